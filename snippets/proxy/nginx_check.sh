# Check the configuration, then load it without dropping a connection.
nginx -t && nginx -s reload
