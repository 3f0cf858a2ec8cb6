/* admin.c — the herald CLI's management verbs. See cli.h. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token.h"

int v_token(const cli_globals *g, const char *line, int argc, char **argv)
{
    const char *user = NULL, *ttl_s = NULL, *pos[1];
    cli_opt opts[] = {{"--user", false, &user, "user", NULL}, {"--ttl", false, &ttl_s, NULL, NULL}, {0}};
    char tok[TOKEN_TEXT_MAX];
    uint64_t ttl = TOKEN_TTL_DEFAULT;
    int npos, rc = cli_parse_opts(argc, argv, opts, pos, 0, &npos, line);
    if (rc)
        return rc;
    if (!user)
        return cli_usage("--user is required", line);
    if (ttl_s && ((rc = cli_num("--ttl", ttl_s, &ttl, line)) != 0))
        return rc;
    if (ttl == 0 || ttl > 10u * 365 * 86400)
        return cli_usage("--ttl must be between 1 and 315360000 seconds", line);
    rc = cli_mint(user, g->admin, (long)ttl, tok, sizeof tok);
    if (rc)
        return rc;
    puts(tok);
    return 0;
}

/* ---- verbs ------------------------------------------------------------------------ */

static void json_conv_info(json_w *w, const herald_conv_info *i)
{
    json_obj(w);
    json_key(w, "id");
    json_strz(w, i->id);
    json_key(w, "kind");
    json_strz(w, i->kind);
    json_key(w, "owner");
    json_strz(w, i->owner);
    json_key(w, "members");
    cli_json_strlist(w, &i->members);
    json_key(w, "count");
    json_u64(w, i->count);
    json_key(w, "max_seq");
    json_u64(w, i->max_seq);
    json_key(w, "cap");
    json_u64(w, i->cap);
    json_key(w, "created");
    json_u64(w, i->created);
    json_key(w, "group");
    json_u64(w, i->group);
    if (i->leader) {
        json_key(w, "leader");
        json_u64(w, i->leader);
    }
    json_obj_end(w);
}

int v_conv(const cli_globals *g, const char *line, int argc, char **argv)
{
    const char *kind = NULL, *members = NULL, *id = NULL, *pos[2];
    cli_opt opts[] = {{"--kind", false, &kind, NULL, cli_conv_kinds},
                      {"--members", false, &members, NULL, NULL},
                      {"--id", false, &id, "conversation", NULL},
                      {0}};
    static const char *const conv_ops[] = {"create", "add", "remove", "info", NULL};
    const char **mv = NULL;
    char *mcopy = NULL;
    uint32_t n = 0;
    herald_client *c = NULL;
    herald_conv_info info = {0};
    herald_buf b = {0};
    json_w w;
    int npos, rc = cli_parse_opts(argc, argv, opts, pos, 2, &npos, line);

    if (rc)
        return rc;
    if (npos < 1)
        return cli_usage("conv needs create, add, remove or info", line);
    if ((rc = cli_choice("conv operation", pos[0], conv_ops, line)) != 0)
        return rc;
    if (npos == 2 && (rc = cli_id("conversation", pos[1], line)) != 0)
        return rc;
    if (strcmp(pos[0], "create") == 0) {
        if (npos != 1 || !kind || !members)
            return cli_usage("conv create needs --kind and --members", line);
    } else if (strcmp(pos[0], "add") == 0 || strcmp(pos[0], "remove") == 0) {
        if (npos != 2 || !members)
            return cli_usage("conv add/remove needs CONV and --members", line);
    } else if (strcmp(pos[0], "info") == 0) {
        if (npos != 2)
            return cli_usage("conv info needs CONV", line);
    } else {
        return cli_usage("conv needs create, add, remove or info", line);
    }
    if (members && (rc = cli_split_list(members, MEMBERS_MAX, "members", line, &mcopy, &mv,
                                        &n)) != 0)
        return rc;
    rc = cli_open(g, NULL, 0, &c);
    if (rc)
        goto out;
    if (strcmp(pos[0], "create") == 0)
        rc = herald_client_conv_create(c, kind, id, mv, n, &info);
    else if (strcmp(pos[0], "add") == 0)
        rc = herald_client_conv_add(c, pos[1], mv, n, &info);
    else if (strcmp(pos[0], "remove") == 0)
        rc = herald_client_conv_remove(c, pos[1], mv, n, &info);
    else
        rc = herald_client_conv_info(c, pos[1], &info);
    if (rc) {
        rc = cli_fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    if (strcmp(pos[0], "info") == 0) {
        json_conv_info(&w, &info);
    } else {
        json_obj(&w);
        json_key(&w, "id");
        json_strz(&w, info.id);
        json_key(&w, "count");
        json_u64(&w, info.count);
        json_obj_end(&w);
    }
    cli_emit(&b);
out:
    herald_conv_info_free(&info);
    herald_buf_free(&b);
    herald_client_close(c);
    free(mcopy);
    free(mv);
    return rc;
}

int v_dir(const cli_globals *g, const char *line, int argc, char **argv)
{
    const char *kind = NULL, *dept = NULL, *title = NULL, *name = NULL, *parent = NULL, *pos[3];
    static const char *const user_kinds[] = {"internal", "external", NULL};
    static const char *const entries[] = {"user", "dept", NULL};
    static const char *const dir_ops[] = {"add", "show", NULL};
    cli_opt opts[] = {{"--kind", false, &kind, NULL, user_kinds},
                      {"--dept", false, &dept, "department", NULL},
                      {"--title", false, &title, NULL, NULL},
                      {"--name", false, &name, NULL, NULL},
                      {"--parent", false, &parent, "department", NULL},
                      {0}};
    herald_dir_entry in = {0}, out = {0};
    herald_client *c = NULL;
    herald_buf b = {0};
    char op[16];
    bool user;
    json_w w;
    int npos, rc = cli_parse_opts(argc, argv, opts, pos, 3, &npos, line);

    if (rc)
        return rc;
    if (npos != 3)
        return cli_usage("dir needs user|dept add|show ID", line);
    if ((rc = cli_choice("directory entry", pos[0], entries, line)) != 0 ||
        (rc = cli_choice("dir operation", pos[1], dir_ops, line)) != 0 ||
        (rc = cli_id(strcmp(pos[0], "user") == 0 ? "user" : "department", pos[2], line)) != 0)
        return rc;
    user = strcmp(pos[0], "user") == 0;
    if (user && strcmp(pos[1], "add") == 0 && !kind)
        return cli_usage("dir user add needs --kind internal|external", line);
    if ((!user && (kind || title)) || (user && parent))
        return cli_usage("that option does not apply here", line);
    snprintf(op, sizeof op, "%s.%s", pos[0], pos[1]);
    in = (herald_dir_entry){.user = user ? (char *)pos[2] : NULL,
                            .dept = user ? (char *)dept : (char *)pos[2],
                            .kind = (char *)kind, .name = (char *)name,
                            .title = (char *)title, .parent = (char *)parent};
    rc = cli_open(g, NULL, 0, &c);
    if (rc)
        return rc;
    rc = herald_client_dir(c, op, &in, &out);
    if (rc) {
        rc = cli_fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    json_obj(&w);
    if (user) {
        json_key(&w, "user");
        json_strz(&w, out.user);
        json_key(&w, "kind");
        json_strz(&w, out.kind);
        json_key(&w, "name");
        json_strz(&w, out.name);
        json_key(&w, "title");
        json_strz(&w, out.title);
        json_key(&w, "dept");
        json_strz(&w, out.dept);
        json_key(&w, "corp");
        json_strz(&w, out.corp);
    } else {
        json_key(&w, "dept");
        json_strz(&w, out.dept);
        json_key(&w, "name");
        json_strz(&w, out.name);
        json_key(&w, "parent");
        json_strz(&w, out.parent);
    }
    json_obj_end(&w);
    cli_emit(&b);
out:
    herald_dir_entry_free(&out);
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

int v_contact(const cli_globals *g, const char *line, int argc, char **argv)
{
    const char *pos[3];
    herald_client *c = NULL;
    herald_strlist owners = {0};
    herald_buf b = {0};
    char conv[64];
    json_w w;
    bool add;
    int npos, rc = cli_parse_opts(argc, argv, NULL, pos, 3, &npos, line);

    if (rc)
        return rc;
    static const char *const contact_ops[] = {"add", "list", NULL};
    if (npos >= 1 && (rc = cli_choice("contact operation", pos[0], contact_ops, line)) != 0)
        return rc;
    add = npos == 3 && strcmp(pos[0], "add") == 0;
    if (!add && !(npos == 2 && strcmp(pos[0], "list") == 0))
        return cli_usage("contact needs add EMPLOYEE CUSTOMER or list CUSTOMER", line);
    if ((rc = cli_id(add ? "employee" : "customer", pos[1], line)) != 0 ||
        (add && (rc = cli_id("customer", pos[2], line)) != 0))
        return rc;
    rc = cli_open(g, NULL, 0, &c);
    if (rc)
        return rc;
    rc = add ? herald_client_contact_add(c, pos[1], pos[2], conv, sizeof conv)
             : herald_client_contact_list(c, pos[1], &owners);
    if (rc) {
        rc = cli_fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    json_obj(&w);
    if (add) {
        json_key(&w, "conv");
        json_strz(&w, conv);
    } else {
        json_key(&w, "customer");
        json_strz(&w, pos[1]);
        json_key(&w, "owners");
        cli_json_strlist(&w, &owners);
    }
    json_obj_end(&w);
    cli_emit(&b);
out:
    herald_strlist_free(&owners);
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

int v_tag(const cli_globals *g, const char *line, int argc, char **argv)
{
    const char *pos[3];
    const char **tv = NULL;
    char *copy = NULL;
    uint32_t n = 0;
    herald_client *c = NULL;
    herald_strlist tags = {0};
    herald_buf b = {0};
    json_w w;
    int npos, rc = cli_parse_opts(argc, argv, NULL, pos, 3, &npos, line);

    if (rc)
        return rc;
    static const char *const tag_ops[] = {"add", "remove", "list", NULL};
    if (npos >= 1 && (rc = cli_choice("tag operation", pos[0], tag_ops, line)) != 0)
        return rc;
    if (!(npos == 2 && strcmp(pos[0], "list") == 0) &&
        !(npos == 3 && (strcmp(pos[0], "add") == 0 || strcmp(pos[0], "remove") == 0)))
        return cli_usage("tag needs add|remove CUSTOMER TAGS or list CUSTOMER", line);
    if ((rc = cli_id("customer", pos[1], line)) != 0)
        return rc;
    if (npos == 3 &&
        (rc = cli_split_list(pos[2], TAGS_MAX, "tags", line, &copy, &tv, &n)) != 0)
        return rc;
    rc = cli_open(g, NULL, 0, &c);
    if (rc)
        goto out;
    rc = herald_client_tags(c, pos[0], pos[1], tv, n, &tags);
    if (rc) {
        rc = cli_fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "customer");
    json_strz(&w, pos[1]);
    json_key(&w, "tags");
    cli_json_strlist(&w, &tags);
    json_obj_end(&w);
    cli_emit(&b);
out:
    free(copy);
    free(tv);
    herald_strlist_free(&tags);
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

int v_mass(const cli_globals *g, const char *line, int argc, char **argv)
{
    const char *tags_s = NULL, *id = NULL, *pos[2];
    cli_opt opts[] = {{"--tags", false, &tags_s, NULL, NULL}, {"--id", false, &id, "mass message", NULL}, {0}};
    static const char *const mass_ops[] = {"send", "status", NULL};
    const char **tv = NULL;
    char *copy = NULL;
    uint32_t n = 0;
    herald_client *c = NULL;
    herald_mass m = {0};
    herald_buf b = {0};
    json_w w;
    bool send;
    int npos, rc = cli_parse_opts(argc, argv, opts, pos, 2, &npos, line);

    if (rc)
        return rc;
    if (npos >= 1 && (rc = cli_choice("mass operation", pos[0], mass_ops, line)) != 0)
        return rc;
    send = npos == 2 && strcmp(pos[0], "send") == 0;
    if (!send && !(npos == 2 && strcmp(pos[0], "status") == 0))
        return cli_usage("mass needs send TEXT or status ID", line);
    if (!send && (rc = cli_id("mass message", pos[1], line)) != 0)
        return rc;
    if (send && !tags_s)
        return cli_usage("mass send needs --tags", line);
    if (send && (rc = cli_split_list(tags_s, TAGS_MAX, "tags", line, &copy, &tv, &n)) != 0)
        return rc;
    rc = cli_open(g, NULL, 0, &c);
    if (rc)
        goto out;
    rc = send ? herald_client_mass_send(c, id, tv, n, pos[1], &m)
              : herald_client_mass_status(c, pos[1], &m);
    if (rc) {
        rc = cli_fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "id");
    json_strz(&w, m.id);
    if (send) {
        json_key(&w, "sent");
        json_u64(&w, m.sent);
    }
    json_key(&w, "reached");
    cli_json_strlist(&w, &m.reached);
    json_key(&w, "limited");
    cli_json_strlist(&w, &m.limited);
    json_key(&w, "missed");
    cli_json_strlist(&w, &m.missed);
    if (send) {
        json_key(&w, "invalidtag");
        cli_json_strlist(&w, &m.bad_tags);
    }
    json_obj_end(&w);
    cli_emit(&b);
out:
    free(copy);
    free(tv);
    herald_mass_free(&m);
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

int v_admin(const cli_globals *g, const char *line, int argc, char **argv)
{
    const char *pos[1];
    herald_client *c = NULL;
    herald_buf b = {0};
    int npos, rc = cli_parse_opts(argc, argv, NULL, pos, 1, &npos, line);

    if (rc)
        return rc;
    if (npos != 1 || strcmp(pos[0], "status") != 0)
        return cli_usage("admin needs status", line);
    rc = cli_open(g, NULL, 0, &c);
    if (rc)
        return rc;
    rc = herald_client_status(c, &b);
    if (rc)
        rc = cli_fail(c, rc, NULL);
    else
        cli_emit(&b);
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}
