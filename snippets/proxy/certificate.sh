# A self-signed certificate for trying this out (use your CA's, e.g. Let's Encrypt, in production).
# Run in nginx's folder (/etc/nginx on Debian).
mkdir -p tls && openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout tls/key.pem -out tls/cert.pem
