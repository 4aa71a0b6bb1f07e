# A throwaway CA and a certificate for 127.0.0.1: server.key, server.pem, and client.pem (the CA)
python -m trustme --identities 127.0.0.1 localhost --quiet
