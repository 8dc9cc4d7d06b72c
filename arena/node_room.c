/*
 * node_room.c -- how many bytes each NUMA node can take now, before the
 * kernel's own reserves: the room a migration into the node really has.
 *
 * Why: a configured capacity (TIERMEM_POLICY_CAPACITY) says what tiermem
 * may use of a tier, not what the kernel will give.  Other processes, the
 * program's own unsited memory and the kernel's reserves take their share.
 * A move into a node without room is worse than no move: bound PREFERRED,
 * mbind's migration copies the pages that find no room on the fast node
 * to the slow one (a copy that changes nothing), move_pages then fails
 * them with ENOMEM, and the arena has to go back.  So the online policy
 * asks first (policy/online_move.c).
 *
 * The figure, per zone of /proc/zoneinfo, in pages:
 *
 *     free + inactive file pages - low - max(protection)
 *
 * and 0 when that is negative; a node's room is the sum over its zones.
 * A user page's allocation takes a zone's free pages only while they stay
 * above its low watermark (as printed, the boost included) and the zone's
 * reserve against allocations that could use a higher zone
 * (lowmem_reserve, printed as "protection"; a movable page could use
 * every zone, hence the largest entry).  Below that, a PREFERRED
 * allocation spills to the next node.  The kernel's own NUMA balancing
 * fills a node to the same point (measured in the guest: its promotions
 * stopped with the zone's free pages at its low watermark).  Pages the
 * program allocates while a move runs may still push part of it over:
 * that is the ENOMEM path of policy/online_move.c.
 *
 * Inactive file pages (nr_zone_inactive_file) count as room: a node full
 * of page cache -- the DRAM of a DRAM+CXL machine after some I/O -- would
 * otherwise never take a promotion.  The PREFERRED allocation spills those
 * pages to the next node rather than reclaim, and the page-by-page pass
 * that follows (move_pages, arena/migrate.c) reclaims the cache and moves
 * them: each such page is copied twice, but it gets there.  Active cache
 * and anonymous memory are not room: reclaiming them costs the program.
 *
 * /proc/zoneinfo is parsed as hostile text (base/text.c): a zone with a
 * field missing or malformed gives no figure, and a node with no zone
 * figure is unknown -- the caller then does not check, as before.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "arena.h"

/* zoneinfo is a few KiB per zone; 1024 nodes of 5 zones stay far below. */
#define ZONEINFO_MAX_BYTES (16u << 20)

typedef struct zone_scan {
    bool in_zone;          /* a "Node N, zone NAME" header was read */
    unsigned node;
    bool bad;              /* a field of this zone did not parse */
    bool has_free, has_low;
    uint64_t free, low, protection;
    uint64_t cache;        /* nr_zone_inactive_file: reclaimable (0: none) */
} zone_scan_t;

/* "N," of a zone header: the node id, below TM_MAX_NODES. */
static bool zone_node_id(text_span_t s, unsigned *node)
{
    uint64_t v;
    if (s.n < 2 || s.p[s.n - 1] != ',')
        return false;
    if (!text_dec_u64(span_make(s.p, s.n - 1), TM_MAX_NODES - 1, &v))
        return false;
    *node = (unsigned)v;
    return true;
}

/* "(0," "3018," "7882)" ...: the largest entry.  False on any bad one. */
static bool zone_protection(const text_span_t *f, size_t n, uint64_t *max)
{
    *max = 0;
    if (n < 2 || f[1].n == 0 || f[1].p[0] != '(')
        return false;
    for (size_t i = 1; i < n; i++) {
        text_span_t s = f[i];
        if (i == 1) {
            s.p++;
            s.n--;
        }
        if (s.n == 0)
            return false;
        char end = s.p[s.n - 1];
        if (end != ',' && end != ')')
            return false;
        if ((end == ')') != (i + 1 == n))
            return false; /* ')' ends the list, and only the list */
        s.n--;
        uint64_t v;
        if (!text_dec_u64(s, UINT64_MAX, &v))
            return false;
        if (v > *max)
            *max = v;
    }
    return true;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static void zone_flush(zone_scan_t *z, uint64_t page_size,
                       uint64_t room[TM_MAX_NODES], uint64_t *known)
{
    if (!z->in_zone || z->bad || !z->has_free || !z->has_low)
        return;
    uint64_t kept = sat_add(z->low, z->protection);
    uint64_t have = sat_add(z->free, z->cache);
    uint64_t pages = have > kept ? have - kept : 0;
    uint64_t bytes = pages > UINT64_MAX / page_size ? UINT64_MAX
                                                     : pages * page_size;
    room[z->node] = sat_add(room[z->node], bytes);
    *known |= 1ull << z->node;
}

/* One line inside a zone: the fields that matter, the rest ignored.
 * The per-CPU pageset lines ("high:  42") end in ':' and do not match. */
static void zone_field(zone_scan_t *z, const text_span_t *f, size_t n)
{
    if (n >= 2 && span_eq(f[0], "pages") && span_eq(f[1], "free")) {
        z->has_free = n == 3 && text_dec_u64(f[2], UINT64_MAX, &z->free);
        z->bad |= !z->has_free;
    } else if (n >= 1 && span_eq(f[0], "low")) {
        z->has_low = n == 2 && text_dec_u64(f[1], UINT64_MAX, &z->low);
        z->bad |= !z->has_low;
    } else if (n >= 1 && span_eq(f[0], "protection:")) {
        z->bad |= !zone_protection(f, n, &z->protection);
    } else if (n >= 1 && span_eq(f[0], "nr_zone_inactive_file")) {
        z->bad |= !(n == 2 && text_dec_u64(f[1], UINT64_MAX, &z->cache));
    }
}

#define ZONE_FIELDS 72 /* protection lists have one entry per zone type */

bool node_room_parse(const char *text, size_t len, uint64_t page_size,
                     uint64_t room[TM_MAX_NODES], uint64_t *known)
{
    memset(room, 0, TM_MAX_NODES * sizeof *room);
    *known = 0;
    if (page_size == 0)
        return false;
    zone_scan_t z;
    memset(&z, 0, sizeof z);
    text_lines_t it;
    text_span_t line, f[ZONE_FIELDS];
    text_lines_init(&it, text, len);
    while (text_next_line(&it, &line)) {
        size_t n = text_fields(line, f, ZONE_FIELDS);
        if (n > ZONE_FIELDS) {
            z.bad |= z.in_zone && span_eq(f[0], "protection:");
            continue;
        }
        if (n == 4 && span_eq(f[0], "Node") && span_eq(f[2], "zone")) {
            zone_flush(&z, page_size, room, known);
            memset(&z, 0, sizeof z);
            z.in_zone = zone_node_id(f[1], &z.node);
            continue;
        }
        if (z.in_zone)
            zone_field(&z, f, n);
    }
    zone_flush(&z, page_size, room, known);
    return *known != 0;
}

int node_room_read(const char *path, uint64_t room[TM_MAX_NODES],
                   uint64_t *known)
{
    size_t len, cap;
    char *text = read_file(path ? path : "/proc/zoneinfo", "zone table",
                           TM_LOG_DEBUG, ZONEINFO_MAX_BYTES, &len, &cap);
    if (text == NULL) {
        memset(room, 0, TM_MAX_NODES * sizeof *room);
        *known = 0;
        return -1;
    }
    bool ok = node_room_parse(text, len, os_page_size(), room, known);
    meta_free(text, cap);
    if (!ok) {
        errno = ENODATA;
        return -1;
    }
    return 0;
}
