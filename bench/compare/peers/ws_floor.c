// The floor for a WebSocket echo server: one epoll loop, one shared buffer, no allocation after accept. The upgrade
// is answered once per connection (Sec-WebSocket-Accept from the request's key, OpenSSL's SHA-1); then every whole
// frame in what arrives is unmasked into an unmasked frame of the same opcode, and all of them go back in one write
// (a ping becomes a pong, a close ends the connection). No UTF-8 check, no limits, no extensions, no ping timer, no
// fragmentation rules: what a WebSocket echo costs in system calls and unmasking alone on this machine, the physical
// limit that `run.sh ws` sets the servers beside. A frame cut across reads waits in its connection's 4 KiB carry
// (larger frames than that close the connection: the bench's messages are 1 KiB).
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { MAXFD = 65536, CARRY = 4096 };
static unsigned char upgraded[MAXFD];  // 0: the handshake head is still coming (it is expected in one read)
static unsigned short carry_n[MAXFD];  // bytes of a cut frame carried to the next read
static unsigned char* carry[MAXFD];    // CARRY bytes, allocated at accept

static int upgrade(int fd, char* req, ssize_t n) {
  req[n] = 0;
  if (!strstr(req, "\r\n\r\n")) return -1;
  char* k = strcasestr(req, "\r\nSec-WebSocket-Key:");
  if (!k) return -1;
  k += 20;
  while (*k == ' ') k++;
  char* e = strstr(k, "\r\n");
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  char cat[128];
  size_t kl = (size_t)(e - k);
  if (kl > 60) return -1;
  memcpy(cat, k, kl);
  memcpy(cat + kl, guid, sizeof guid - 1);
  unsigned char sha[20];
  SHA1((unsigned char*)cat, kl + sizeof guid - 1, sha);
  char acc[32];
  EVP_EncodeBlock((unsigned char*)acc, sha, 20);
  char resp[256];
  int rl = snprintf(resp, sizeof resp,
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Accept: %s\r\n\r\n",
                    acc);
  return write(fd, resp, (size_t)rl) == rl ? 0 : -1;
}

// Turns the whole client frames at p[0..n) into server frames in out; returns the bytes written to out, sets
// *used to the bytes consumed (the rest is a cut frame), -1 on a close frame or a frame this floor does not take.
static ssize_t echo_frames(const unsigned char* p, size_t n, unsigned char* out, size_t* used) {
  size_t i = 0, w = 0;
  for (;;) {
    if (n - i < 2) break;
    unsigned op = p[i] & 0x0f, l7 = p[i + 1] & 0x7f;
    size_t h = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + 4;
    if (!(p[i + 1] & 0x80) || l7 == 127) return -1;  // clients mask; no frame of 64 KiB or more here
    if (n - i < h) break;
    size_t len = l7 == 126 ? (size_t)p[i + 2] << 8 | p[i + 3] : l7;
    if (len + h > CARRY) return -1;
    if (n - i < h + len) break;
    if (op == 8) return -1;
    const unsigned char* m = p + i + h - 4;
    const unsigned char* d = p + i + h;
    out[w] = (unsigned char)((p[i] & 0x80) | (op == 9 ? 10 : op));
    if (len < 126) {
      out[w + 1] = (unsigned char)len;
      w += 2;
    } else {
      out[w + 1] = 126, out[w + 2] = (unsigned char)(len >> 8), out[w + 3] = (unsigned char)len;
      w += 4;
    }
    uint32_t key;
    memcpy(&key, m, 4);
    uint64_t k8 = (uint64_t)key << 32 | key;
    size_t j = 0;
    for (; j + 8 <= len; j += 8) {  // unmask 8 bytes at a time
      uint64_t v;
      memcpy(&v, d + j, 8);
      v ^= k8;
      memcpy(out + w + j, &v, 8);
    }
    for (; j < len; j++) out[w + j] = d[j] ^ m[j & 3];
    w += len;
    i += h + len;
  }
  *used = i;
  return (ssize_t)w;
}

int main(int argc, char** argv) {
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {
      .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])), .sin_addr.s_addr = htonl(0x7f000001)};
  if (bind(ls, (struct sockaddr*)&a, sizeof a) || listen(ls, 4096)) {
    perror("listen");
    return 1;
  }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, evs[1024];
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  static unsigned char buf[65536 + CARRY + 1], out[65536 + CARRY];
  puts("ready");
  fflush(stdout);
  for (;;) {
    int n = epoll_wait(ep, evs, 1024, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == ls) {
        int c;
        while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          if (c >= MAXFD || (!carry[c] && !(carry[c] = malloc(CARRY)))) {
            close(c);
            continue;
          }
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          upgraded[c] = 0, carry_n[c] = 0;
          struct epoll_event e = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
        }
        continue;
      }
      size_t have = carry_n[fd];
      if (have) memcpy(buf, carry[fd], have);
      ssize_t r = read(fd, buf + have, 65536);
      if (r <= 0) {
        close(fd);
        continue;
      }
      if (!upgraded[fd]) {
        if (upgrade(fd, (char*)buf, r) < 0) {
          close(fd);
          continue;
        }
        upgraded[fd] = 1;
        continue;
      }
      size_t used = 0;
      ssize_t w = echo_frames(buf, have + (size_t)r, out, &used);
      if (w < 0 || (w && write(fd, out, (size_t)w) != w)) {  // the bench's client never lets a socket fill
        close(fd);
        continue;
      }
      carry_n[fd] = (unsigned short)(have + (size_t)r - used);
      if (carry_n[fd]) memcpy(carry[fd], buf + used, carry_n[fd]);
    }
  }
}
