curl --silent --show-error --cacert client.pem --http2 \
  --output /dev/null --write-out '%{http_version}\n' https://127.0.0.1:8443/
