# --8<-- [start:verified]
curl --fail --silent --show-error --cacert tls/ca.pem https://localhost:8443/
# --8<-- [end:verified]
# --8<-- [start:unverified]
curl --fail --silent --show-error https://localhost:8443/
# --8<-- [end:unverified]
