/*
 * dev.h — `heraldd dev` in one process: the session tier, the request
 * service, and a group-commit writer per store as its backend (a command is
 * answered once its batch is synced); each applied command's events go to
 * the sessions directly. Loop thread only.
 */
#ifndef HERALD_HERALDD_DEV_H
#define HERALD_HERALDD_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "store.h"
#include "svc.h"
#include "tier.h"

struct ev_loop;
typedef struct dev dev;

/* Starts writers over the n open stores (borrowed; group i in stores[i]),
 * the service (with the event-callback deliverer: cb), and the listener
 * of cfg. 0, HERALD_EINVAL, HERALD_EIO (bind failed; errno kept),
 * HERALD_ENOMEM. */
int dev_start(const gw_config *cfg, const svc_cb_config *cb, struct ev_loop *loop,
              store *const *stores, uint32_t n, dev **out);
/* The bound client port. */
uint16_t dev_port(const dev *d);
/* The bound WebSocket port (0: gateway.ws_listen is off). */
uint16_t dev_ws_port(const dev *d);
/* True when the listeners speak TLS (wss:// for WebSocket). */
bool dev_tls(const dev *d);
/* The bound port of the MQTT listener (0: none). */
uint16_t dev_mqtt_port(const dev *d);
/* obs_source callbacks (http/obs.h) for d: the session tier's metrics,
 * each group store's map, each writer's queue and commits; always ready. */
struct prom_w;
void dev_metrics(void *d, struct prom_w *w);
bool dev_ready(void *d, char *why, size_t whylen);
/* The open API's backend (api.h): the token verified here (signature and
 * expiry), the frame run by the request service; its reply frames go to
 * done once the request is over. */
void dev_api_request(void *d, const char *token, herald_frame *f, const uint8_t *payload,
                     size_t len, api_done_fn done, void *arg);
/* Commits and answers what is queued, then closes every connection and
 * frees. NULL-safe. */
void dev_stop(dev *d);

#endif
