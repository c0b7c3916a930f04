#!/bin/bash
# CTest fixture for http_nginx_test: starts Debian's nginx on 127.0.0.1 with its own configuration in DIR (a free
# port, chosen by the kernel and written to DIR/port; nginx cannot listen on port 0), serving DIR/www; stops it.
#   nginx_fixture.sh start DIR | stop DIR
set -eu
cmd=$1 dir=$2
case $cmd in
start)
  rm -rf "$dir" && mkdir -p "$dir/www/dir" "$dir/www/list" "$dir/www/dav" "$dir/tmp"
  chmod -R a+rX "$dir"  # the workers run as an unprivileged user when we are root
  chmod a+rwx "$dir/www/dav"  # where WebDAV PUTs land
  printf 'hello from nginx' > "$dir/www/hello.txt"
  printf '<p>index</p>' > "$dir/www/dir/index.html"
  printf 'a' > "$dir/www/list/alpha.txt"
  printf 'b' > "$dir/www/list/beta.txt"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat > "$dir/nginx.conf" <<CONF
daemon on;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  keepalive_timeout 30s;
  server {
    listen 127.0.0.1:$port;
    root $dir/www;
    location = /moved { return 302 /hello.txt; }
    location /list/ { autoindex on; }  # a listing has no Content-Length: nginx sends it chunked
    location /dav/ {  # uploads (chunked or not) stored as files, to be read back
      dav_methods PUT DELETE;
      client_max_body_size 16m;
    }
  }
}
CONF
  # The master binds before it daemonizes: once nginx returns, the port listens.
  nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log"
  echo "$port" > "$dir/port"
  ;;
stop)
  [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
  ;;
esac
