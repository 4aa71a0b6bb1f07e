# On the host, before `docker run`: the key belongs to root and to the image's group (10001),
# which may read it; nobody else can.
chown 0:10001 tls/key.pem
chmod 0440 tls/key.pem
