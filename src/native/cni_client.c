// tabby CNI client — the executable the container runtime runs as `tabby` / `tabby-ipam` for every pod.
// It does no CNI work itself: it forwards its environment, its name and stdin to the resident CNI
// server in tabby-node (unix socket, root only) and relays the answer's stdout and exit code. A few
// milliseconds instead of starting a Node.js process per pod.
//
// When the agent cannot serve, the client execs the in-process Node.js plugin (`tabby-fallback` next to
// this executable, or $TABBY_CNI_FALLBACK) with the same environment and stdin, so pods still start
// while tabby-node restarts:
//   - no socket / connection refused (agent not running, or killed and its socket left behind);
//   - no "accepted" byte within TABBY_CNI_AGENT_TIMEOUT_MS (default 1000) — the agent is hung;
//   - the agent says "fall back" ('F'), or closes the connection before answering (it died mid-command;
//     every CNI command is idempotent, so running it again in-process is safe).
// The handshake (request → 'A' → 'G' → result) makes the client commit to one path before the agent
// starts: a client that gave up never sends 'G', and the agent never starts a command without it.
//
// Wire format (all integers u32 big-endian), see src/cni/resident-protocol.ts:
//   client: "TCN1" len name  len env ("K=V\0"…)  len stdin   then, after 'A':  'G'
//   server: 'A' | 'F'        then: exit-code  len stdout
// Settings (environment): TABBY_CNI_SOCKET (default $TABBY_STATE_DIR/cni.sock, /var/run/tabby/cni.sock),
// TABBY_CNI_AGENT_TIMEOUT_MS, TABBY_CNI_FALLBACK, TABBY_CNI_RESIDENT=0 (always the in-process plugin).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_STDIN (16u << 20)
#define MAX_STDOUT (16u << 20)
#define RESULT_TIMEOUT_MS 120000

static const char *name_of(const char *argv0) {
  const char *s = argv0 ? strrchr(argv0, '/') : NULL;
  return s ? s + 1 : (argv0 && *argv0 ? argv0 : "tabby");
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The cniVersion of the config on stdin, for our own error objects (default 1.0.0). */
static void cni_version(const char *in, size_t len, char *out, size_t outlen) {
  snprintf(out, outlen, "1.0.0");
  const char *k = in ? memmem(in, len, "\"cniVersion\"", 12) : NULL;
  if (!k) return;
  const char *end = in + len, *p = k + 12;
  while (p < end && (*p == ' ' || *p == ':' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  if (p >= end || *p != '"') return;
  p++;
  const char *q = memchr(p, '"', (size_t)(end - p));
  if (!q || q == p || (size_t)(q - p) >= outlen) return;
  for (const char *c = p; c < q; c++) if (!((*c >= '0' && *c <= '9') || *c == '.')) return;
  memcpy(out, p, (size_t)(q - p));
  out[q - p] = 0;
}

static int write_all_fd(int fd, const char *buf, size_t len) {
  while (len) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

static void fail(const char *in, size_t len, int code, const char *msg) {
  char v[32], out[1024];
  cni_version(in, len, v, sizeof v);
  snprintf(out, sizeof out, "{\"cniVersion\":\"%s\",\"code\":%d,\"msg\":\"%s\"}\n", v, code, msg);
  write_all_fd(1, out, strlen(out));
  exit(1);
}

/* Exec the in-process plugin with our environment; stdin (already read) is handed over in a memfd. */
static void fall_back(const char *name, const char *in, size_t len, int have_stdin) {
  char path[PATH_MAX];
  const char *fb = getenv("TABBY_CNI_FALLBACK");
  if (fb && *fb) {
    snprintf(path, sizeof path, "%s", fb);
  } else {
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 32);
    if (n <= 0) fail(in, len, 999, "tabby: cannot find its own executable (/proc/self/exe) to run the fallback plugin");
    path[n] = 0;
    char *slash = strrchr(path, '/');
    snprintf(slash ? slash + 1 : path, 32, "tabby-fallback");
  }
  if (have_stdin) {
    int fd = memfd_create("tabby-cni-stdin", MFD_CLOEXEC);
    if (fd < 0 || write_all_fd(fd, in, len) < 0 || lseek(fd, 0, SEEK_SET) < 0 || dup2(fd, 0) < 0) {
      fail(in, len, 999, "tabby: cannot hand the network configuration to the fallback plugin");
    }
    close(fd);
  }
  setenv("TABBY_CNI_PLUGIN_NAME", name, 1);
  char *argv[] = {path, NULL};
  execv(path, argv);
  char msg[PATH_MAX + 128];
  snprintf(msg, sizeof msg, "tabby-node does not answer and the fallback plugin %s cannot run: %s", path, strerror(errno));
  for (char *c = msg; *c; c++) if (*c == '"' || *c == '\\') *c = '\'';
  fail(in, len, 50, msg);
}

static char *read_stdin(size_t *len) {
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap);
  if (!buf) return NULL;
  for (;;) {
    if (n == cap) {
      if (cap >= MAX_STDIN) { free(buf); errno = EFBIG; return NULL; }
      char *b = realloc(buf, cap *= 2);
      if (!b) { free(buf); return NULL; }
      buf = b;
    }
    ssize_t r = read(0, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { free(buf); return NULL; }
    if (r == 0) break;
    n += (size_t)r;
  }
  *len = n;
  return buf;
}

/* poll-based I/O on the non-blocking socket, each bounded by an absolute deadline. */
static int wait_fd(int fd, short ev, long long deadline) {
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0) return -1;
    struct pollfd p = {fd, ev, 0};
    int r = poll(&p, 1, (int)left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    return 0;
  }
}

static int send_all(int fd, const char *buf, size_t len, long long deadline) {
  while (len) {
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) { if (wait_fd(fd, POLLOUT, deadline)) return -1; continue; }
    if (n <= 0) return -1;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

/* 0 = got len bytes, -1 = EOF/error, -2 = timeout */
static int recv_all(int fd, char *buf, size_t len, long long deadline) {
  while (len) {
    ssize_t n = recv(fd, buf, len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) { if (wait_fd(fd, POLLIN, deadline)) return -2; continue; }
    if (n <= 0) return -1;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

static int send_u32(int fd, uint32_t v, long long deadline) {
  unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
  return send_all(fd, (const char *)b, 4, deadline);
}

static uint32_t get_u32(const unsigned char *b) {
  return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

int main(int argc, char **argv) {
  (void)argc;
  const char *name = name_of(argv[0]);
  const char *resident = getenv("TABBY_CNI_RESIDENT");
  if (resident && strcmp(resident, "0") == 0) fall_back(name, NULL, 0, 0);

  size_t in_len = 0;
  char *in = isatty(0) ? calloc(1, 1) : read_stdin(&in_len);
  if (!in) fail(NULL, 0, 5, "tabby: cannot read the network configuration on stdin (more than 16 MiB, or a read error)");

  char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  const char *sp = getenv("TABBY_CNI_SOCKET");
  const char *sd = getenv("TABBY_STATE_DIR");
  if (sp && *sp) snprintf(sock_path, sizeof sock_path, "%s", sp);
  else snprintf(sock_path, sizeof sock_path, "%s/cni.sock", sd && *sd ? sd : "/var/run/tabby");
  long timeout = 1000;
  const char *ts = getenv("TABBY_CNI_AGENT_TIMEOUT_MS");
  if (ts && *ts) { char *e; long t = strtol(ts, &e, 10); if (*e == 0 && t > 0) timeout = t; }
  long long ack_deadline = now_ms() + timeout;

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) fall_back(name, in, in_len, 1);

  // The request: magic, name, environment, stdin.
  size_t env_len = 0;
  for (char **e = environ; *e; e++) env_len += strlen(*e) + 1;
  char *envb = malloc(env_len + 1);
  if (!envb) fail(in, in_len, 999, "tabby: out of memory");
  size_t off = 0;
  for (char **e = environ; *e; e++) { size_t l = strlen(*e) + 1; memcpy(envb + off, *e, l); off += l; }
  if (send_all(fd, "TCN1", 4, ack_deadline) || send_u32(fd, (uint32_t)strlen(name), ack_deadline) ||
      send_all(fd, name, strlen(name), ack_deadline) || send_u32(fd, (uint32_t)env_len, ack_deadline) ||
      send_all(fd, envb, env_len, ack_deadline) || send_u32(fd, (uint32_t)in_len, ack_deadline) ||
      send_all(fd, in, in_len, ack_deadline)) {
    close(fd);
    fall_back(name, in, in_len, 1);
  }
  free(envb);

  char ack = 0;
  if (recv_all(fd, &ack, 1, ack_deadline) != 0 || ack != 'A' || send_all(fd, "G", 1, ack_deadline)) {
    close(fd);  // the agent never starts the command without our 'G'
    fall_back(name, in, in_len, 1);
  }

  // Committed: the agent runs the command. It answers within its own 90 s deadline.
  long long deadline = now_ms() + RESULT_TIMEOUT_MS;
  unsigned char hdr[8];
  int r = recv_all(fd, (char *)hdr, 8, deadline);
  if (r == -2) fail(in, in_len, 11, "tabby-node accepted the command but gave no result within 120 s");
  if (r == -1) { close(fd); fall_back(name, in, in_len, 1); }  // the agent went away mid-command
  uint32_t code = get_u32(hdr), out_len = get_u32(hdr + 4);
  if (out_len > MAX_STDOUT) fail(in, in_len, 999, "tabby-node sent a malformed answer");
  char *out = malloc(out_len + 1);
  if (!out) fail(in, in_len, 999, "tabby: out of memory");
  r = recv_all(fd, out, out_len, deadline);
  if (r == -2) fail(in, in_len, 11, "tabby-node accepted the command but gave no result within 120 s");
  if (r == -1) { close(fd); fall_back(name, in, in_len, 1); }
  close(fd);
  if (write_all_fd(1, out, out_len) < 0) return 1;
  return code > 255 ? 1 : (int)code;
}
