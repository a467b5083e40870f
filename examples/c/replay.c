/*
 * replay: feed a pcap/pcapng file (and optionally host events) through entrospect and print
 * every output event as one EVE JSON line on stdout; alerts also as a human line on stderr,
 * and every inline flow verdict as one `VERDICT ...` line on stderr.
 *
 *   replay CAPTURE [HOST_EVENTS.jsonl]
 *
 * Host events are read first and merged into the packet stream by timestamp: before each
 * packet, every host event whose timestamp is <= the packet's is fed. Exit status: 0 on
 * success, 1 on any entrospect or libpcap error, 2 on bad usage.
 *
 * This is the program to copy when embedding entrospect in a sensor: the engine lifecycle,
 * the callback, error reporting with entrospect_last_error and the status checks are all
 * here.
 */
#define _DEFAULT_SOURCE /* getline, strdup, u_char */
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entrospect.h"

/* Print why the last entrospect call failed. */
static void report(const char *what, entrospect_status st) {
  char msg[1024];
  size_t n = 0;
  if (entrospect_last_error(msg, sizeof msg, &n) != ENTROSPECT_STATUS_OK) {
    msg[0] = '\0';
  }
  fprintf(stderr, "replay: %s failed (status %u): %s\n", what, (unsigned)st, msg);
}

/* The callback: one JSON line per event; alerts also as a human line. */
static int on_event(void *userdata, const entrospect_event *ev) {
  unsigned long *count = userdata;
  if (fwrite(ev->json, 1, ev->json_len, stdout) != ev->json_len || putchar('\n') == EOF) {
    return 1; /* stdout is gone: stop delivery */
  }
  ++*count;
  if (ev->event_type == ENTROSPECT_EVENT_TYPE_ALERT) {
    char src[64] = "?", dst[64] = "?";
    if (ev->src_family == ENTROSPECT_ADDR_FAMILY_IPV4) {
      snprintf(src, sizeof src, "%u.%u.%u.%u", ev->src_addr[0], ev->src_addr[1], ev->src_addr[2],
               ev->src_addr[3]);
    }
    if (ev->dst_family == ENTROSPECT_ADDR_FAMILY_IPV4) {
      snprintf(dst, sizeof dst, "%u.%u.%u.%u", ev->dst_addr[0], ev->dst_addr[1], ev->dst_addr[2],
               ev->dst_addr[3]);
    }
    fprintf(stderr, "ALERT %s severity=%u score=%.2f %s:%u -> %s:%u flow_id=%" PRIu64 "\n",
            ev->analytic ? ev->analytic : "?", (unsigned)ev->severity, (double)ev->score, src,
            (unsigned)ev->src_port, dst, (unsigned)ev->dst_port, ev->flow_id);
  }
  return 0;
}

/* The verdict callback: one line per verdict, as soon as the engine decides it (a sensor
 * would release, flag or cut the flow here). Strings are borrowed for the call only. */
static const char *verdict_name(entrospect_verdict_kind v) {
  switch (v) {
    case ENTROSPECT_VERDICT_KIND_ALLOW: return "allow";
    case ENTROSPECT_VERDICT_KIND_ALERT: return "alert";
    case ENTROSPECT_VERDICT_KIND_BLOCK_SUGGESTED: return "block_suggested";
  }
  return "?";
}

static void on_verdict(void *userdata, const entrospect_verdict *v) {
  unsigned long *count = userdata;
  ++*count;
  fprintf(stderr,
          "VERDICT flow_id=%" PRIu64 " verdict=%s analytics=%s severity=%u payload_packets=%" PRIu64
          " packets=%" PRIu64 " latency_ns=%" PRIu64 " at_flow_end=%d\n",
          v->flow_id, verdict_name(v->verdict), v->analytics ? v->analytics : "-",
          (unsigned)v->severity, v->payload_packets, v->packets, v->latency_ns,
          v->at_flow_end ? 1 : 0);
}

/* One host event line, with the timestamp it carries (parsed here only for merging). */
struct host_line {
  char *text;
  size_t len;
  uint64_t ts_ns;
};

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

/* The "timestamp":"YYYY-MM-DDTHH:MM:SS[.fraction]Z" of a host event line, in ns; 0 when
 * absent or unreadable (such a line is fed first and entrospect reports what is wrong). */
static uint64_t line_timestamp(const char *line) {
  const char *p = strstr(line, "\"timestamp\"");
  if (!p) return 0;
  p = strchr(p + 11, '"');
  if (!p) return 0;
  int y, mo, d, h, mi, s, used = 0;
  if (sscanf(p + 1, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &used) != 6) return 0;
  uint64_t frac = 0;
  const char *f = p + 1 + used;
  if (*f == '.') {
    int digits = 0;
    for (++f; *f >= '0' && *f <= '9'; ++f) {
      if (digits < 9) {
        frac = frac * 10 + (uint64_t)(*f - '0');
        ++digits;
      }
    }
    for (; digits < 9; ++digits) frac *= 10;
  }
  int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
  if (days < 0) return 0;
  return ((uint64_t)days * 86400 + (uint64_t)h * 3600 + (uint64_t)mi * 60 + (uint64_t)s) *
             1000000000ull + frac;
}

/* Read every non-empty line of a JSON-lines file. */
static struct host_line *read_host_lines(const char *path, size_t *count) {
  FILE *f = fopen(path, "r");
  if (!f) {
    perror(path);
    return NULL;
  }
  struct host_line *lines = NULL;
  size_t n = 0, cap = 0;
  char *buf = NULL;
  size_t bufcap = 0;
  ssize_t got;
  while ((got = getline(&buf, &bufcap, f)) >= 0) {
    while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == '\r')) buf[--got] = '\0';
    if (got == 0) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      struct host_line *grown = realloc(lines, cap * sizeof *lines);
      if (!grown) break;
      lines = grown;
    }
    lines[n].text = strdup(buf);
    if (!lines[n].text) break;
    lines[n].len = (size_t)got;
    lines[n].ts_ns = line_timestamp(buf);
    ++n;
  }
  free(buf);
  fclose(f);
  *count = n;
  return lines;
}

/* Feed host lines [*next, count) whose timestamp is <= limit. */
static int feed_host_lines(entrospect_engine *engine, struct host_line *lines, size_t count,
                           size_t *next, uint64_t limit) {
  for (; *next < count && lines[*next].ts_ns <= limit; ++*next) {
    entrospect_status st =
        entrospect_engine_process_host_event_json(engine, lines[*next].text, lines[*next].len);
    if (st != ENTROSPECT_STATUS_OK) {
      char what[64];
      snprintf(what, sizeof what, "host event line %zu", *next + 1);
      report(what, st);
      if (st == ENTROSPECT_STATUS_CALLBACK_ERROR) return -1;
      /* A bad line is skipped; the rest go on. */
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s CAPTURE [HOST_EVENTS.jsonl]\n", argv[0]);
    return 2;
  }
  if (entrospect_abi_version() != ENTROSPECT_ABI_VERSION) {
    fprintf(stderr, "replay: libentrospect ABI %u, header ABI %u\n", entrospect_abi_version(),
            (unsigned)ENTROSPECT_ABI_VERSION);
    return 1;
  }
  struct host_line *lines = NULL;
  size_t nlines = 0, next_line = 0;
  if (argc == 3) {
    lines = read_host_lines(argv[2], &nlines);
    if (!lines && nlines == 0) {
      FILE *probe = fopen(argv[2], "r");
      if (!probe) return 1;
      fclose(probe);
    }
  }

  char errbuf[PCAP_ERRBUF_SIZE];
  pcap_t *pcap = pcap_open_offline_with_tstamp_precision(argv[1], PCAP_TSTAMP_PRECISION_NANO,
                                                         errbuf);
  if (!pcap) {
    fprintf(stderr, "replay: %s: %s\n", argv[1], errbuf);
    return 1;
  }
  /* libpcap reports DLT_ values; they equal tcpdump's LINKTYPE_ numbers except for the
   * raw-IP values 12/14, which entrospect also takes. */
  uint32_t link_type = (uint32_t)pcap_datalink(pcap);

  entrospect_engine *engine = NULL;
  entrospect_status st = entrospect_engine_new(NULL, &engine);
  if (st != ENTROSPECT_STATUS_OK) {
    report("entrospect_engine_new", st);
    pcap_close(pcap);
    return 1;
  }
  unsigned long events = 0;
  st = entrospect_engine_set_callback(engine, on_event, &events);
  if (st != ENTROSPECT_STATUS_OK) report("entrospect_engine_set_callback", st);
  unsigned long verdicts = 0;
  st = entrospect_engine_set_verdict_callback(engine, on_verdict, &verdicts);
  if (st != ENTROSPECT_STATUS_OK) report("entrospect_engine_set_verdict_callback", st);

  int rc = 0;
  unsigned long packets = 0;
  struct pcap_pkthdr *hdr;
  const u_char *data;
  int got;
  while ((got = pcap_next_ex(pcap, &hdr, &data)) == 1) {
    uint64_t ts = (uint64_t)hdr->ts.tv_sec * 1000000000ull + (uint64_t)hdr->ts.tv_usec;
    if (feed_host_lines(engine, lines, nlines, &next_line, ts) != 0) {
      rc = 1;
      break;
    }
    st = entrospect_engine_process_captured_packet(engine, ts, link_type, data, hdr->caplen,
                                                   hdr->len);
    if (st != ENTROSPECT_STATUS_OK) {
      report("entrospect_engine_process_captured_packet", st);
      rc = 1;
      break;
    }
    ++packets;
  }
  if (got == PCAP_ERROR) {
    fprintf(stderr, "replay: %s: %s\n", argv[1], pcap_geterr(pcap));
    rc = 1;
  }
  if (rc == 0 && feed_host_lines(engine, lines, nlines, &next_line, UINT64_MAX) != 0) rc = 1;
  st = entrospect_engine_finish(engine);
  if (st != ENTROSPECT_STATUS_OK) {
    report("entrospect_engine_finish", st);
    rc = 1;
  }
  fprintf(stderr,
          "replay: %lu packets, %zu host events, %lu events, %lu verdicts (entrospect %s)\n",
          packets, nlines, events, verdicts, entrospect_version());

  entrospect_engine_free(engine);
  pcap_close(pcap);
  for (size_t i = 0; i < nlines; ++i) free(lines[i].text);
  free(lines);
  return rc;
}
