/*
 * clink.h — security of the links between Herald processes: mutual TLS
 * (nng's tls+tcp transport, mbedTLS underneath) with a cluster CA.
 *
 * Every process of a cluster holds a certificate signed by the cluster CA
 * whose common name says what it is: "node-N" for node N, "gateway-N" for
 * gateway N (deploy/cluster-certs.sh makes them). Listeners require a
 * client certificate signed by the CA, so a peer without one is refused
 * during the handshake, before any frame is read; dialers check that the
 * server's certificate is signed by the CA and names the peer they meant to
 * reach. (nng 1.5 does not tell a listener the name in its peer's
 * certificate, so a request's handler knows that the sender belongs to the
 * cluster, not which process it is: a client's identity is proven by its
 * token, which the gateway forwards and the node verifies.)
 *
 * A NULL clink means plaintext (tcp://): allowed only when every cluster
 * address is a loopback address (the configuration checks it).
 *
 * Threads: create / destroy on one thread; the other calls are reentrant
 * (nng holds its own references to the TLS configurations it is given).
 */
#ifndef HERALD_NODE_CLINK_H
#define HERALD_NODE_CLINK_H

#include <nng/nng.h>
#include <stddef.h>

typedef struct clink clink;

/* Loads the CA (PEM file ca_file) and this process's certificate and private
 * key (cert_file: one PEM file holding both). 0 and *out, or HERALD_EINVAL
 * with a message naming the file in err (unreadable, not PEM, key does not
 * match), HERALD_ENOMEM. */
int clink_create(const char *ca_file, const char *cert_file, clink **out, char *err,
                 size_t errlen);
/* NULL-safe. The listeners and dialers set up with it keep what they need. */
void clink_destroy(clink *t);

/* Listens on url ("tcp://host:port"; with t the TLS form of it is used).
 * *port_out (optional) gets the bound port. 0 or an nng error code. */
int clink_listen(nng_socket s, const char *url, const clink *t, int *port_out);

/* Dials url in the background (nng redials as needed); with t the peer's
 * certificate must name `peer` (e.g. "node-2"). 0 or an nng error code. */
int clink_dial(nng_socket s, const char *url, const clink *t, const char *peer);

#endif
