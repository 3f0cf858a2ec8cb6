/* cmd.c — command codec; see cmd.h. */
#include "cmd.h"

#include <herald/error.h>
#include <msgpack.h>
#include <string.h>

#include "mpcheck.h"
#include "mptab.h"

#define CMD_DEPTH_MAX 3u

/* Table indexes; the table is indexed by them (designated initializers), so
 * the required masks cannot drift from the table. */
enum { C_OP, C_TEN, C_USER, C_ADMIN, C_CONV, C_CMID, C_BODY, C_KIND, C_SECRET, C_FLAGS,
       C_CAP, C_SEQ, C_TS, C_WIN, C_IVL, C_MAX, C_MEM, C_EXT, C_TARGET, C_NAME, C_TITLE,
       C_DEPT, C_PARENT, C_CORP, C_DPS, C_TGS, C_DWIN, C_FREQ, C_CLIM, C_XWAIT, C_OCONV, C_OSEQ, C_OCNT,
       C_COUNT_ };

#define F(i, k, kind, member) [i] = {k, kind, offsetof(cmd, member), 0, NULL, 0, 0}
static const mpt_field cmd_fields[C_COUNT_] = {
    F(C_OP, "op", MPT_U32, op),             F(C_TEN, "ten", MPT_STR, tenant),
    F(C_USER, "user", MPT_STR, user),       F(C_ADMIN, "admin", MPT_BOOL, admin),
    F(C_CONV, "conv", MPT_STR, conv),       F(C_CMID, "cmid", MPT_STR, cmid),
    F(C_BODY, "body", MPT_BODY, body),      F(C_KIND, "kind", MPT_STR, kind),
    F(C_SECRET, "secret", MPT_STR, secret), F(C_FLAGS, "flags", MPT_U32, flags),
    F(C_CAP, "cap", MPT_U32, cap),          F(C_SEQ, "seq", MPT_U64, seq),
    F(C_TS, "ts", MPT_U64, ts),             F(C_WIN, "win", MPT_U64, win),
    F(C_IVL, "ivl", MPT_U32, ivl),          F(C_MAX, "max", MPT_U32, max),
    [C_MEM] = {"mem", MPT_STRS, offsetof(cmd, members), offsetof(cmd, n_members), NULL, 0, 0},
    [C_EXT] = {"ext", MPT_STRS, offsetof(cmd, external), offsetof(cmd, n_external), NULL, 0, 0},
    F(C_TARGET, "tgt", MPT_STR, target),    F(C_NAME, "name", MPT_STR, name),
    F(C_TITLE, "title", MPT_STR, title),    F(C_DEPT, "dept", MPT_STR, dept),
    F(C_PARENT, "parent", MPT_STR, parent), F(C_CORP, "corp", MPT_STR, corp),
    [C_DPS] = {"dps", MPT_STRS, offsetof(cmd, depts), offsetof(cmd, n_depts), NULL, 0, 0},
    [C_TGS] = {"tgs", MPT_STRS, offsetof(cmd, tags), offsetof(cmd, n_tags), NULL, 0, 0},
    F(C_DWIN, "dwin", MPT_U32, dedup_s),    F(C_FREQ, "freq", MPT_U32, freq),
    F(C_CLIM, "clim", MPT_U32, climit),     F(C_XWAIT, "xwait", MPT_U32, xwait),
    [C_OCONV] = {"oc", MPT_STRS, offsetof(cmd, oconvs), offsetof(cmd, n_oconvs), NULL, 0, 0},
    [C_OSEQ] = {"os", MPT_U64S, offsetof(cmd, oseqs), offsetof(cmd, n_oseqs), NULL, 0, 0},
    [C_OCNT] = {"on", MPT_U64S, offsetof(cmd, ocounts), offsetof(cmd, n_ocounts), NULL, 0, 0},
};
#undef F
#define NFIELDS ((size_t)C_COUNT_)

#define B(k) (1ull << (k))
static const uint64_t required[CMD_OP_COUNT_] = {
    [CMD_TENANT_CREATE] = B(C_TEN) | B(C_SECRET),
    [CMD_CONV_CREATE] = B(C_TEN) | B(C_USER) | B(C_CONV) | B(C_KIND) | B(C_TS),
    [CMD_CONV_ADD] = B(C_TEN) | B(C_USER) | B(C_CONV) | B(C_MEM) | B(C_TS),
    [CMD_CONV_REMOVE] = B(C_TEN) | B(C_USER) | B(C_CONV) | B(C_MEM) | B(C_TS),
    [CMD_SEND] = B(C_TEN) | B(C_USER) | B(C_CONV) | B(C_TS),
    [CMD_READ] = B(C_TEN) | B(C_USER) | B(C_CONV) | B(C_SEQ) | B(C_TS),
    [CMD_RECALL] = B(C_TEN) | B(C_USER) | B(C_CONV) | B(C_SEQ) | B(C_TS),
    [CMD_DND] = B(C_TEN) | B(C_USER) | B(C_TS),
    [CMD_CONFIRM] = B(C_TEN) | B(C_USER) | B(C_CONV) | B(C_SEQ) | B(C_TS),
    [CMD_REMIND] = B(C_TS),
    [CMD_DIR_USER] = B(C_TEN) | B(C_USER) | B(C_TARGET) | B(C_KIND) | B(C_TS),
    [CMD_DIR_DEPT] = B(C_TEN) | B(C_USER) | B(C_DEPT) | B(C_TS),
    [CMD_CONTACT_ADD] = B(C_TEN) | B(C_USER) | B(C_TARGET) | B(C_NAME) | B(C_CONV) | B(C_TS),
    [CMD_TAG] = B(C_TEN) | B(C_USER) | B(C_TARGET) | B(C_KIND) | B(C_MEM) | B(C_TS),
    [CMD_MASS_MARK] = B(C_TEN) | B(C_USER) | B(C_CMID) | B(C_TS),
    [CMD_SLOTMAP] = B(C_BODY),
    [CMD_APP_MARK] = B(C_TEN) | B(C_USER) | B(C_TARGET) | B(C_CMID) | B(C_KIND) | B(C_TS),
    [CMD_APP_DELIVER] = B(C_TEN) | B(C_USER) | B(C_CONV) | B(C_KIND) | B(C_MEM) | B(C_CMID) |
                        B(C_TS),
    [CMD_TRANSFER_MARK] = B(C_TEN) | B(C_USER) | B(C_TS),
    [CMD_TRANSFER_DUE] = B(C_TS),
    [CMD_CONV_HANDOVER] = B(C_TEN) | B(C_USER) | B(C_CONV) | B(C_TARGET) | B(C_NAME) | B(C_TS),
    [CMD_TRANSFER_DONE] = B(C_TEN) | B(C_USER) | B(C_TARGET) | B(C_NAME) | B(C_MEM) | B(C_CONV) |
                          B(C_TS),
    [CMD_APP_CREATE] = B(C_TEN) | B(C_USER) | B(C_TARGET) | B(C_SECRET) | B(C_TS),
    [CMD_APP_CALLBACK] = B(C_TEN) | B(C_USER) | B(C_TARGET) | B(C_TS),
    [CMD_OUTBOX] = B(C_KIND) | B(C_TS),
    [CMD_OFFLINE] = B(C_TEN) | B(C_OCONV) | B(C_OSEQ) | B(C_OCNT) | B(C_MEM) | B(C_TS),
};

const char *cmd_op_name(uint32_t op)
{
    switch (op) {
#define CMD_OP_NAME_(name, num) \
    case num:                   \
        return #name;
        CMD_OPS(CMD_OP_NAME_)
#undef CMD_OP_NAME_
    default:
        return "UNKNOWN";
    }
}

int cmd_encode(const cmd *c, herald_buf *out)
{
    size_t start = out->len;
    mpt_sink sink = {.b = out};
    msgpack_packer pk;

    if (c->op == 0 || c->op >= CMD_OP_COUNT_)
        return HERALD_EINVAL;
    msgpack_packer_init(&pk, &sink, mpt_sink_write);
    mpt_encode(&pk, cmd_fields, NFIELDS, c, NULL);
    if (sink.failed) {
        out->len = start;
        return HERALD_ENOMEM;
    }
    return 0;
}

void cmd_release(cmd *c)
{
    if (!c)
        return;
    mpt_free(cmd_fields, NFIELDS, c);
    memset(c, 0, sizeof *c);
}

int cmd_decode(const uint8_t *p, size_t n, cmd *out)
{
    uint64_t seen = 0;
    int rc;

    rc = mpt_decode_bytes(p, n, CMD_DEPTH_MAX, cmd_fields, NFIELDS, out, sizeof *out, &seen);
    if (rc)
        return rc;
    if (out->op == 0 || out->op >= CMD_OP_COUNT_ ||
        (seen & required[out->op]) != required[out->op]) {
        cmd_release(out);
        return HERALD_EPROTOCOL;
    }
    return 0;
}
