#!/usr/bin/env bash
# mkcreds.sh DIR: throwaway credentials for tests and the demo, in DIR:
#   ca.pem, server.pem, server.key   a CA and a TLS server certificate for 127.0.0.1 / localhost
#   partner.key (PKCS#8, mode 0600)  the merchant's RSA-2048 private key
#   partner.pub                      its public key (given to the sandbox)
#   client-secret (mode 0600)        the merchant's client secret, no newline
#   client-id                        the merchant's client id, no newline
set -euo pipefail
dir=${1:?usage: mkcreds.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=doku-bridge test CA" \
  -keyout ca.key -out ca.pem -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile server.ext -out server.pem 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out partner.key 2>/dev/null
openssl pkey -in partner.key -pubout -out partner.pub 2>/dev/null
head -c 24 /dev/urandom | base64 | tr -d '\n/+=' | sed 's/^/SK-/' > client-secret
printf 'BRN-0001-%s' "$(date +%s)" > client-id
rm -f server.csr server.ext ca.srl
chmod 600 partner.key client-secret server.key ca.key
chmod 644 ca.pem server.pem partner.pub client-id
