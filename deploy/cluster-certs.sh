#!/usr/bin/env bash
# deploy/cluster-certs.sh — the certificates of a cluster's links (mutual
# TLS between nodes and gateways), made with openssl.
#
#   deploy/cluster-certs.sh init  DIR        a new cluster CA: DIR/ca.pem (give it to
#                                            every process), DIR/ca.key (keep it safe)
#   deploy/cluster-certs.sh issue DIR NAME   DIR/NAME.pem: a certificate for NAME signed
#                                            by the CA, followed by its private key
#   deploy/cluster-certs.sh server DIR HOST  DIR/HOST.pem: a certificate for the
#                                            gateways' client port (gateway.tls_cert)
#                                            naming HOST, as clients dial it
#                                            (tls://HOST:PORT; HERALD_CA=DIR/ca.pem)
#
# NAME is what the process is: node-N for node N (cluster.members id N),
# gateway-N for gateway N (gateway.id). Dialers check that a node's
# certificate names the node they dial; listeners accept any certificate the
# CA signed. Keys are ECDSA P-256; certificates last 825 days, the CA 10
# years. Each process then gets, in its config:
#   cluster.tls_ca = DIR/ca.pem
#   cluster.tls_cert = DIR/NAME.pem
# Files holding keys are mode 0600. Exit 0 done, 1 failure, 2 usage.
set -euo pipefail
prog=deploy/cluster-certs.sh
usage() { echo "usage: $prog init DIR | issue DIR NAME (NAME: node-N or gateway-N) | server DIR HOST" >&2; exit 2; }
die() { echo "$prog: $*" >&2; exit 1; }
command -v openssl >/dev/null || die "openssl is needed (apt-get install openssl)"
(($# >= 2)) || usage
verb=$1 dir=$2
umask 077
case $verb in
  init)
    (($# == 2)) || usage
    mkdir -p "$dir"
    [ -e "$dir/ca.key" ] && die "$dir/ca.key exists: a CA is there already"
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key" 2>/dev/null
    openssl req -new -x509 -key "$dir/ca.key" -sha256 -days 3650 -subj "/CN=herald-cluster-ca" \
      -out "$dir/ca.pem" 2>/dev/null
    chmod 0644 "$dir/ca.pem"
    echo "$dir/ca.pem (the cluster CA) and $dir/ca.key (its key) written"
    ;;
  issue|server)
    (($# == 3)) || usage
    name=$3
    if [ "$verb" = issue ]; then
      [[ $name =~ ^(node|gateway)-[0-9]+$ ]] || die "NAME must be node-N or gateway-N, not '$name'"
    else
      [[ $name =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]] || die "HOST must be a host name, not '$name'"
    fi
    [ -f "$dir/ca.key" ] && [ -f "$dir/ca.pem" ] || die "no CA in $dir: run '$prog init $dir' first"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/key" 2>/dev/null
    openssl req -new -key "$tmp/key" -sha256 -subj "/CN=$name" -out "$tmp/csr" 2>/dev/null
    printf 'subjectAltName = DNS:%s\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth, clientAuth\n' \
      "$name" >"$tmp/ext"
    openssl x509 -req -in "$tmp/csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
      -CAserial "$dir/ca.srl" -days 825 -sha256 -extfile "$tmp/ext" -out "$tmp/crt" 2>/dev/null
    cat "$tmp/crt" "$tmp/key" >"$dir/$name.pem"
    echo "$dir/$name.pem written (certificate and key of $name)"
    ;;
  *) usage ;;
esac
