/*
 * dbtap_pcap: the smallest libpcap binding the capture process needs that
 * the `cap` package lacks:
 *
 *   - pcap_stats(), the kernel's own counters (ps_recv, ps_drop, ps_ifdrop);
 *   - packets handed over in batches: one dispatch() call fills a buffer
 *     with many packets in the transport's batch record layout, instead of
 *     one JavaScript callback per packet;
 *   - the kernel's packet timestamps and wire lengths (pcap_pkthdr);
 *   - pcap_findalldevs(), so capture needs no other binding;
 *   - no immediate mode, so on Linux libpcap uses TPACKET_V3, whose ring
 *     packs packets by their captured size (immediate mode's TPACKET_V2
 *     gives every packet a snap-length slot: a 2 MiB ring then holds ~32).
 *
 * It is built with node-gyp when libpcap's headers are installed and is
 * optional: without it the agent captures through `cap` and reports the
 * kernel's counters as unknown.
 *
 * Record layout written by dispatch(), all little-endian:
 *   +--------+-----------+----------+-------------+--------------+------+
 *   | ts f64 | origLen   | capLen   | linkType    | interfaceId  | data |
 *   | (µs)   | u32       | u32      | u16         | u16 (0)      |      |
 *   +--------+-----------+----------+-------------+--------------+------+
 */
#include <node_api.h>
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#ifdef __linux__
#include <linux/filter.h>
#include <sys/socket.h>
#endif

#define RECORD_HEADER 20

typedef struct {
  pcap_t *p;
  int link_type;
  int snap_len;
  /* output of the dispatch in progress */
  uint8_t *out;
  size_t out_len;
  size_t used;
  double delivered;
  /* kernel counters when the filter was in place: what came before is not this capture's */
  struct pcap_stat base;
} capture_t;

static void put_u16(uint8_t *b, uint32_t v) {
  b[0] = (uint8_t)v;
  b[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *b, uint32_t v) {
  b[0] = (uint8_t)v;
  b[1] = (uint8_t)(v >> 8);
  b[2] = (uint8_t)(v >> 16);
  b[3] = (uint8_t)(v >> 24);
}

static void put_f64(uint8_t *b, double d) {
  uint64_t v;
  memcpy(&v, &d, 8);
  put_u32(b, (uint32_t)v);
  put_u32(b + 4, (uint32_t)(v >> 32));
}

/* Throws an Error whose `code` says which step failed ("open" or "filter"). */
static napi_value fail(napi_env env, const char *stage, const char *message) {
  napi_throw_error(env, stage, message);
  return NULL;
}

static int get_string(napi_env env, napi_value v, char *buf, size_t len) {
  size_t n;
  return napi_get_value_string_utf8(env, v, buf, len, &n) == napi_ok;
}

static capture_t *get_capture(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "not a capture handle");
    return NULL;
  }
  capture_t *c = data;
  if (c->p == NULL) {
    napi_throw_error(env, "closed", "capture is closed");
    return NULL;
  }
  return c;
}

static int is_loopback(const char *device) {
  pcap_if_t *all = NULL;
  char errbuf[PCAP_ERRBUF_SIZE];
  int loop = 0;
  if (pcap_findalldevs(&all, errbuf) != 0) return 0;
  for (pcap_if_t *d = all; d != NULL; d = d->next) {
    if (strcmp(d->name, device) == 0) loop = (d->flags & PCAP_IF_LOOPBACK) != 0;
  }
  pcap_freealldevs(all);
  return loop;
}

/*
 * On a loopback device the kernel hands the packet socket every packet twice,
 * outgoing and incoming; libpcap discards the outgoing copy in user space,
 * after the kernel counted both in ps_recv (and may have dropped either). A
 * kernel filter that passes only the incoming copy makes ps_recv and ps_drop
 * count packets once. libpcap's own filter stays the user's: it filters the
 * ring blocks filled before the kernel filter was set, where the packet
 * direction is not available to a user-space BPF program.
 */
static int set_filters(pcap_t *p, const char *filter, int loopback, char *msg, size_t msg_len) {
  struct bpf_program prog;
  if (filter[0] != 0) {
    if (pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) return snprintf(msg, msg_len, "%s", pcap_geterr(p)), -1;
    int rc = pcap_setfilter(p, &prog);
    pcap_freecode(&prog);
    if (rc != 0) return snprintf(msg, msg_len, "%s", pcap_geterr(p)), -1;
  }
#ifdef __linux__
  if (loopback) {
    char both[4200];
    snprintf(both, sizeof both, filter[0] != 0 ? "(%s) and inbound" : "inbound%s", filter);
    if (pcap_compile(p, &prog, both, 1, PCAP_NETMASK_UNKNOWN) != 0) return snprintf(msg, msg_len, "%s", pcap_geterr(p)), -1;
    struct sock_fprog fprog = {(unsigned short)prog.bf_len, (struct sock_filter *)prog.bf_insns};
    int rc = setsockopt(pcap_fileno(p), SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog);
    pcap_freecode(&prog);
    if (rc != 0) return snprintf(msg, msg_len, "cannot set the kernel filter: %s", strerror(errno)), -1;
  }
#else
  (void)loopback;
#endif
  return 0;
}

/* The capture handle that is the one argument of stats() and close(). */
static capture_t *capture_arg(napi_env env, napi_callback_info info, const char *name) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) {
    napi_throw_error(env, name, "a capture handle is required");
    return NULL;
  }
  return get_capture(env, argv[0]);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  capture_t *c = data;
  if (c->p != NULL) pcap_close(c->p);
  free(c);
}

/* open(device, filter, snapLen, bufferSize, timeoutMs) -> { handle, linkType, linkName } */
static napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5) return fail(env, "open", "open(device, filter, snapLen, bufferSize, timeoutMs)");
  char device[256], filter[4096], errbuf[PCAP_ERRBUF_SIZE], msg[PCAP_ERRBUF_SIZE + 128];
  int32_t snap_len, buffer_size, timeout_ms;
  if (!get_string(env, argv[0], device, sizeof device) || !get_string(env, argv[1], filter, sizeof filter) ||
      napi_get_value_int32(env, argv[2], &snap_len) != napi_ok || napi_get_value_int32(env, argv[3], &buffer_size) != napi_ok ||
      napi_get_value_int32(env, argv[4], &timeout_ms) != napi_ok) {
    return fail(env, "open", "bad arguments to open()");
  }
  errbuf[0] = 0;
  pcap_t *p = pcap_create(device, errbuf);
  if (p == NULL) return fail(env, "open", errbuf);
  pcap_set_snaplen(p, snap_len);
  pcap_set_promisc(p, 1);
  pcap_set_timeout(p, timeout_ms);
  pcap_set_buffer_size(p, buffer_size);
  int rc = pcap_activate(p);
  if (rc < 0) {
    const char *status = pcap_statustostr(rc), *detail = pcap_geterr(p);
    if (detail == NULL || detail[0] == 0 || strcmp(detail, status) == 0) detail = NULL;
    snprintf(msg, sizeof msg, "%s%s%s", status, detail ? ": " : "", detail ? detail : "");
    pcap_close(p);
    return fail(env, "open", msg);
  }
  if (set_filters(p, filter, is_loopback(device), msg, sizeof msg) != 0) {
    pcap_close(p);
    return fail(env, "filter", msg);
  }
  if (pcap_setnonblock(p, 1, errbuf) != 0) {
    pcap_close(p);
    return fail(env, "open", errbuf);
  }
  capture_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    pcap_close(p);
    return fail(env, "open", "out of memory");
  }
  c->p = p;
  if (pcap_stats(p, &c->base) != 0) memset(&c->base, 0, sizeof c->base);
  c->link_type = pcap_datalink(p);
  /* DLT_RAW is 12 or 14 by platform; the LINKTYPE_ value in records is 101. */
  if (c->link_type == DLT_RAW) c->link_type = 101;
  c->snap_len = pcap_snapshot(p);
  napi_value result, handle, link_type, link_name;
  const char *name = pcap_datalink_val_to_name(pcap_datalink(p));
  napi_create_object(env, &result);
  napi_create_external(env, c, finalize, NULL, &handle);
  napi_create_int32(env, c->link_type, &link_type);
  napi_create_string_utf8(env, name ? name : "", NAPI_AUTO_LENGTH, &link_name);
  napi_set_named_property(env, result, "handle", handle);
  napi_set_named_property(env, result, "linkType", link_type);
  napi_set_named_property(env, result, "linkName", link_name);
  return result;
}

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes) {
  capture_t *c = (capture_t *)user;
  uint8_t *o = c->out + c->used;
  put_f64(o, (double)h->ts.tv_sec * 1e6 + (double)h->ts.tv_usec);
  put_u32(o + 8, h->len);
  put_u32(o + 12, h->caplen);
  put_u16(o + 16, (uint32_t)c->link_type);
  put_u16(o + 18, 0);
  memcpy(o + RECORD_HEADER, bytes, h->caplen);
  c->used += RECORD_HEADER + h->caplen;
  c->delivered += 1;
  /* The next packet might not fit: stop; libpcap keeps the rest for the next call. */
  if (c->out_len - c->used < (size_t)RECORD_HEADER + (size_t)c->snap_len) pcap_breakloop(c->p);
}

/*
 * dispatch(handle, buffer, offset) -> new offset. Appends the packets the
 * kernel holds as records from `offset` on, while a packet of the snap length
 * still fits. Never blocks.
 */
static napi_value Dispatch(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) return fail(env, "dispatch", "dispatch(handle, buffer, offset)");
  capture_t *c = get_capture(env, argv[0]);
  if (c == NULL) return NULL;
  void *data;
  size_t len;
  int64_t offset;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok || napi_get_value_int64(env, argv[2], &offset) != napi_ok || offset < 0 ||
      (size_t)offset > len) {
    return fail(env, "dispatch", "bad buffer or offset");
  }
  c->out = data;
  c->out_len = len;
  c->used = (size_t)offset;
  while (c->out_len - c->used >= (size_t)RECORD_HEADER + (size_t)c->snap_len) {
    int n = pcap_dispatch(c->p, -1, on_packet, (u_char *)c);
    if (n == PCAP_ERROR) return fail(env, "dispatch", pcap_geterr(c->p));
    if (n == 0) break; /* ring empty */
    /* n > 0, or PCAP_ERROR_BREAK when the buffer filled up (the loop condition ends it) */
  }
  c->out = NULL;
  napi_value result;
  napi_create_int64(env, (int64_t)c->used, &result);
  return result;
}

/* stats(handle) -> { received, dropped, ifDropped, delivered }: pcap_stats() and this binding's count. */
static napi_value Stats(napi_env env, napi_callback_info info) {
  capture_t *c = capture_arg(env, info, "stats");
  if (c == NULL) return NULL;
  struct pcap_stat s;
  if (pcap_stats(c->p, &s) != 0) return fail(env, "stats", pcap_geterr(c->p));
  napi_value result, v;
  napi_create_object(env, &result);
  /* u_int counters wrap at 2^32 (the kernel's are 32-bit too): unsigned differences stay right */
  napi_create_double(env, (double)(uint32_t)(s.ps_recv - c->base.ps_recv), &v);
  napi_set_named_property(env, result, "received", v);
  napi_create_double(env, (double)(uint32_t)(s.ps_drop - c->base.ps_drop), &v);
  napi_set_named_property(env, result, "dropped", v);
  napi_create_double(env, (double)(uint32_t)(s.ps_ifdrop - c->base.ps_ifdrop), &v);
  napi_set_named_property(env, result, "ifDropped", v);
  napi_create_double(env, c->delivered, &v);
  napi_set_named_property(env, result, "delivered", v);
  return result;
}

/* close(handle): releases the capture; later calls on the handle throw. */
static napi_value Close(napi_env env, napi_callback_info info) {
  capture_t *c = capture_arg(env, info, "close");
  if (c == NULL) return NULL;
  pcap_close(c->p);
  c->p = NULL;
  return NULL;
}

/* devices() -> [{ name, description, addresses: [ip, ...] }] (pcap_findalldevs) */
static napi_value Devices(napi_env env, napi_callback_info info) {
  (void)info;
  pcap_if_t *all = NULL;
  char errbuf[PCAP_ERRBUF_SIZE];
  if (pcap_findalldevs(&all, errbuf) != 0) return fail(env, "devices", errbuf);
  napi_value list, v;
  napi_create_array(env, &list);
  uint32_t i = 0;
  for (pcap_if_t *d = all; d != NULL; d = d->next) {
    napi_value dev, addrs;
    napi_create_object(env, &dev);
    napi_create_string_utf8(env, d->name, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, dev, "name", v);
    if (d->description != NULL) napi_create_string_utf8(env, d->description, NAPI_AUTO_LENGTH, &v);
    else napi_get_undefined(env, &v);
    napi_set_named_property(env, dev, "description", v);
    napi_create_array(env, &addrs);
    uint32_t j = 0;
    for (pcap_addr_t *a = d->addresses; a != NULL; a = a->next) {
      char text[INET6_ADDRSTRLEN];
      const void *raw = NULL;
      if (a->addr == NULL) continue;
      if (a->addr->sa_family == AF_INET) raw = &((struct sockaddr_in *)a->addr)->sin_addr;
      else if (a->addr->sa_family == AF_INET6) raw = &((struct sockaddr_in6 *)a->addr)->sin6_addr;
      if (raw == NULL || inet_ntop(a->addr->sa_family, raw, text, sizeof text) == NULL) continue;
      napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &v);
      napi_set_element(env, addrs, j++, v);
    }
    napi_set_named_property(env, dev, "addresses", addrs);
    napi_set_element(env, list, i++, dev);
  }
  pcap_freealldevs(all);
  return list;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, Open, NULL, NULL, NULL, napi_default, NULL},
      {"dispatch", NULL, Dispatch, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, Stats, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, Close, NULL, NULL, NULL, napi_default, NULL},
      {"devices", NULL, Devices, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
