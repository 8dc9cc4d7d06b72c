/*
 * online_move.c -- the online policy's moves: the difference between each
 * arena's tier and the target online_choose gave it, migrated demotions
 * first, within the byte budget, never past a tier's capacity, never into
 * nodes without room for the arena now, and what a refused move teaches
 * (a tier that counts as full for a while).
 */
#include "online_internal.h"

#include <errno.h>
#include <string.h>

#include "base.h"
#include "sites.h"

void online_sort(unsigned *ids, size_t n, const double *score)
{
    static const size_t gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
    for (size_t g = 0; g < sizeof(gaps) / sizeof(gaps[0]); g++) {
        size_t gap = gaps[g];
        for (size_t i = gap; i < n; i++) {
            unsigned v = ids[i];
            size_t j = i;
            while (j >= gap &&
                   (score[ids[j - gap]] < score[v] ||
                    (score[ids[j - gap]] == score[v] && ids[j - gap] > v))) {
                ids[j] = ids[j - gap];
                j -= gap;
            }
            ids[j] = v;
        }
    }
}

/* ---------------------------------------------------------------- migrate */

/* Tier `tier`'s nodes, bound PREFERRED: the configured topology, else the
 * runtime's.  0, or -1 with errno. */
static int online_tier_placement(const online_t *o, unsigned tier,
                                 tm_placement_t *p)
{
    const tm_topology_t *topo = o->cfg.topology ? o->cfg.topology
                                                : topology_get();
    return tm_topology_tier_placement(topo, tier, TM_MODE_PREFERRED, p);
}

/* The real move: the arena table walk keeps the arena alive meanwhile.
 * Fast tiers are bound PREFERRED so a full node spills, not fails. */
static int online_migrate_default(const online_t *o, unsigned arena_id,
                                  unsigned tier)
{
    tm_placement_t to;
    if (online_tier_placement(o, tier, &to) != 0) {
        log_warn("online: no placement for tier %u: errno %d", tier, errno);
        return -1;
    }
    arena_walk_begin();
    int rc = -1;
    tm_arena_t *a = arena_by_id(arena_id);
    if (!a)
        errno = ENOENT;
    else
        rc = tm_arena_migrate(a, &to, NULL);
    int err = errno;
    arena_walk_end();
    errno = err;
    return rc;
}

static int online_migrate(online_t *o, unsigned id, unsigned tier)
{
    if (o->cfg.migrate)
        return o->cfg.migrate(o->cfg.migrate_ctx, id, tier);
    return online_migrate_default(o, id, tier);
}

/* The real room of one tier: what its nodes can take, from one reading
 * of the zone table (arena/node_room.c) shared by all the tiers of a
 * round.  Unknown when the table names none of the tier's nodes. */
static int online_room_of_nodes(const online_t *o, unsigned tier,
                                const uint64_t *room, uint64_t known,
                                uint64_t *bytes)
{
    tm_placement_t p;
    if (online_tier_placement(o, tier, &p) != 0 || (p.nodes & known) == 0)
        return -1;
    uint64_t sum = 0;
    for (unsigned n = 0; n < TM_MAX_NODES; n++)
        if (p.nodes & known & 1ull << n)
            sum = sum > UINT64_MAX - room[n] ? UINT64_MAX : sum + room[n];
    *bytes = sum;
    return 0;
}

/* ---------------------------------------------------------------- moving */

typedef struct online_round {
    double budget;          /* bytes left this decision; < 0 = unlimited */
    bool held;              /* an earlier move waits for budget */
    uint64_t wanted;        /* the largest move put off for budget */
    uint64_t used[TM_MAX_NODES];
    /* What each tier's nodes can take, read once before the round's
     * first move and then kept by the round's own moves: a demotion's
     * pages may sit in the kernel's per-CPU free lists, which the zone
     * table does not count, so a second reading would not see them.
     * Bit t of room_known: room[t] is known (else: no check). */
    uint64_t room[TM_MAX_NODES];
    uint64_t room_known;
} online_round_t;

/* Moves are paid for in order (demotions, then promotions).  One the
 * budget cannot pay for now holds back every move after it: otherwise
 * smaller, less important moves would spend the budget each decision and
 * a large arena would never save up enough to move. */
static bool online_afford(online_t *o, online_round_t *r, uint64_t bytes)
{
    if (r->budget < 0.0)
        return true;
    if (!r->held && (double)bytes <= r->budget)
        return true;
    r->held = true;
    if (bytes > r->wanted)
        r->wanted = bytes;
    o->stats.skipped_budget++;
    return false;
}

/* The tier holds at most what it holds and the room its nodes have left
 * (0 after an ENOMEM), but at least a sixteenth more: the arenas already
 * there grow a little between decisions, and must not be pushed out for
 * it. */
static void online_mark_full(online_t *o, const online_round_t *r,
                             unsigned to, uint64_t room)
{
    uint64_t used = r->used[to], more = room > used / 16 ? room : used / 16;
    o->full_bytes[to] = more > UINT64_MAX - used ? UINT64_MAX : used + more;
    o->full_until[to] = o->stats.decisions + ONLINE_FULL_DECISIONS;
}

/*
 * A move failed with ENOMEM: the kernel found no free page on the tier's
 * nodes, whatever its configured capacity says (other processes, the
 * kernel's reserves) -- the room check (online_has_room) makes this rare,
 * but the program allocates while a move runs.  Retrying every decision
 * would move part of the arena each time and fail again -- bytes migrated
 * for nothing, a few hundred MiB in the guest benchmark.  (A demotion
 * too: a middle tier whose nodes are full; the next decision then
 * demotes past it.)  So the arena goes back where the policy has it (its
 * pages and its placement agree again, and the pages that did move free
 * the fast tier for others), and the tier counts as holding at most what
 * it holds now (and a sixteenth) for ONLINE_FULL_DECISIONS decisions.
 */
static void online_tier_full(online_t *o, online_round_t *r, unsigned id,
                             unsigned from, unsigned to)
{
    online_arena_t *a = &o->arena[id];
    online_mark_full(o, r, to, 0);
    bool back = online_migrate(o, id, from) == 0;
    log_warn("online: tier %u is full: arena %u (%llu bytes) could not move "
             "there (errno %d)%s; the tier counts as holding at most %llu "
             "bytes for %u decisions", to, id, (unsigned long long)a->bytes,
             ENOMEM, back ? "" : ", nor all the way back",
             (unsigned long long)o->full_bytes[to], ONLINE_FULL_DECISIONS);
}

/* Does the tier's room, where known, take this many bytes? */
static bool online_room_fits(const online_round_t *r, unsigned t,
                             uint64_t bytes)
{
    return !(r->room_known >> t & 1) || bytes <= r->room[t];
}

/*
 * Before a promotion: does the tier have room for the arena, by what its
 * nodes can take now rather than by the configured capacity?  A move
 * started without room is worse than none (see online_tier_full, and
 * arena/node_room.c): so the arena stays, and the tier counts as holding
 * what it holds and the room it has, as after an ENOMEM, without a byte
 * moved.
 */
/* Pages sampled to measure what a promotion would bring: enough for a
 * figure within a fraction of a percent, cheap next to the move. */
#define ONLINE_MEASURE_PAGES 4096

/* The bytes a move of the real arena into tier `to` would bring there:
 * its resident pages off the tier's nodes, measured now.  The policy's
 * own figure can be stale -- residency is measured every few intervals,
 * and an array still being first touched had 4.5 of its 12 MiB resident
 * at the last measurement (seen in the guest benchmark: the move then
 * overfilled the node).  Falls back to that figure when it cannot
 * measure, or for a test's own moves. */
static uint64_t online_incoming(const online_t *o, unsigned id, unsigned to)
{
    uint64_t estimate = o->arena[id].bytes;
    if (o->cfg.migrate)
        return estimate;
    tm_placement_t p;
    if (online_tier_placement(o, to, &p) != 0)
        return estimate;
    tm_residency_t res;
    arena_walk_begin();
    tm_arena_t *a = arena_by_id(id);
    int rc = a ? tm_arena_residency(a, ONLINE_MEASURE_PAGES, &res) : -1;
    arena_walk_end();
    if (rc != 0)
        return estimate;
    uint64_t there = 0;
    for (unsigned n = 0; n < TM_MAX_NODES; n++)
        if (p.nodes >> n & 1)
            there += res.node_bytes[n];
    return res.bytes_resident > there ? res.bytes_resident - there : 0;
}

static bool online_has_room(online_t *o, const online_round_t *r,
                            unsigned id, unsigned to, uint64_t *incoming)
{
    const online_arena_t *a = &o->arena[id];
    *incoming = a->bytes;
    if (!(r->room_known >> to & 1))
        return true;
    *incoming = online_incoming(o, id, to);
    if (online_room_fits(r, to, *incoming))
        return true;
    o->stats.skipped_room++;
    online_mark_full(o, r, to, r->room[to]);
    int level = o->room_warned[to] ? TM_LOG_INFO : TM_LOG_WARN;
    o->room_warned[to] = true;
    log_at(level, "online: tier %u has room for %llu bytes now (its nodes' "
           "free memory above the kernel's reserves): arena %u (%llu bytes "
           "to bring) stays on tier %u, and the tier counts as holding at "
           "most %llu bytes for %u decisions", to,
           (unsigned long long)r->room[to], id,
           (unsigned long long)*incoming, a->tier,
           (unsigned long long)o->full_bytes[to], ONLINE_FULL_DECISIONS);
    return false;
}

/* A move's bytes leave `from` and take room in `to`, for the rest of the
 * round. */
static void online_room_moved(online_round_t *r, unsigned from, unsigned to,
                              uint64_t bytes)
{
    if (r->room_known >> from & 1)
        r->room[from] = bytes > UINT64_MAX - r->room[from]
                            ? UINT64_MAX
                            : r->room[from] + bytes;
    if (r->room_known >> to & 1)
        r->room[to] = bytes < r->room[to] ? r->room[to] - bytes : 0;
}

static void online_move(online_t *o, online_round_t *r, unsigned id)
{
    online_arena_t *a = &o->arena[id];
    unsigned to = a->target, from = a->tier, last = o->cfg.ntiers - 1;
    debug_assert(to <= last && from <= last); /* online_choose set every target */
    if (to < from && r->used[to] + a->bytes > online_usable(o, to))
        return;               /* a promotion would overfill: wait for room */
    /* A demotion into a full tier may wait for a promotion out of it, and
     * that promotion for this demotion's room (a swap between two fast
     * tiers): go further down to a tier with room instead; the next
     * decision brings it back up if it belongs there. */
    while (to > from && to < last &&
           (r->used[to] + a->bytes > online_usable(o, to) ||
            !online_room_fits(r, to, a->bytes)))
        to++;
    if (!online_afford(o, r, a->bytes))
        return;
    uint64_t incoming = a->bytes;
    if (to < from && !online_has_room(o, r, id, to, &incoming))
        return;
    if (online_migrate(o, id, to) != 0) {
        o->stats.failures++;
        if (errno == ENOMEM) {
            online_tier_full(o, r, id, from, to);
            return;
        }
        log_warn("online: moving arena %u (%llu bytes) from tier %u to %u "
                    "failed: errno %d (will retry)", id,
                    (unsigned long long)a->bytes, from, to, errno);
        return;
    }
    log_info("online: arena %u (%llu bytes) tier %u -> %u", id,
                (unsigned long long)a->bytes, from, to);
    if (r->budget >= 0.0)
        r->budget -= (double)a->bytes;
    debug_assert_rule(r->used[from] >= a->bytes,
                   "a tier's used bytes count every arena on it");
    r->used[from] -= a->bytes;
    r->used[to] += a->bytes;
    online_room_moved(r, from, to, incoming);
    a->tier = (uint8_t)to;
    a->moved_at = o->stats.decisions;
    o->stats.moves++;
    o->stats.bytes_migrated += a->bytes;
    o->stats.last_bytes += a->bytes;
    if (to > from)
        o->stats.demotions++;
    else
        o->stats.promotions++;
}

/* The budget this decision may spend: one decision's worth, plus what
 * earlier decisions saved while a move they put off waited -- up to that
 * move's size, so an idle policy banks no burst. */
static double online_budget(online_t *o)
{
    if (o->cfg.budget_bytes_per_s <= 0.0)
        return -1.0;
    double per = o->cfg.budget_bytes_per_s * o->cfg.every *
                 (double)o->cfg.interval_ns / 1e9;
    double cap = (double)o->wanted > per ? (double)o->wanted : per;
    o->credit += per;
    if (o->credit > cap)
        o->credit = cap;
    return o->credit;
}

/* Before the round: the room of every tier a move is planned into but
 * the last, which takes the rest (none planned, nothing read).  A
 * demotion into a middle tier without room goes further down. */
static void online_room_read(online_t *o, online_round_t *r, size_t n)
{
    uint64_t wanted = 0;
    unsigned last = o->cfg.ntiers - 1;
    for (size_t i = 0; i < n; i++) {
        const online_arena_t *a = &o->arena[o->order[i]];
        if (a->target != a->tier && a->target < last)
            wanted |= 1ull << a->target;
    }
    if (wanted == 0 || (o->cfg.room == NULL && o->cfg.migrate != NULL))
        return; /* nothing to ask, or a test's own moves: no real node */
    uint64_t nodes_room[TM_MAX_NODES], nodes_known = 0;
    if (o->cfg.room == NULL &&
        node_room_read(NULL, nodes_room, &nodes_known) != 0)
        return;
    for (unsigned t = 0; t < o->cfg.ntiers; t++) {
        if (!(wanted >> t & 1))
            continue;
        int rc = o->cfg.room ? o->cfg.room(o->cfg.room_ctx, t, &r->room[t])
                             : online_room_of_nodes(o, t, nodes_room,
                                                    nodes_known, &r->room[t]);
        if (rc == 0)
            r->room_known |= 1ull << t;
    }
}

/* Demotions: slowest source tier first (room below before room above),
 * coldest first.  Promotions: fastest destination first, hottest first. */
void online_apply(online_t *o)
{
    online_round_t r;
    memset(&r, 0, sizeof(r));
    r.budget = online_budget(o);
    size_t n = 0;
    for (unsigned id = 1; id <= TM_MAX_ARENAS; id++)
        if (online_live(o, id)) {
            o->order[n++] = id;
            r.used[o->arena[id].tier] += o->arena[id].bytes;
            o->score[id] = online_density(&o->arena[id]);
        }
    online_sort(o->order, n, o->score);
    online_room_read(o, &r, n);
    for (unsigned t = o->cfg.ntiers; t-- > 0;)
        for (size_t i = n; i-- > 0;) {
            const online_arena_t *a = &o->arena[o->order[i]];
            if (a->tier == t && a->target > t)
                online_move(o, &r, o->order[i]);
        }
    for (unsigned t = 0; t < o->cfg.ntiers; t++)
        for (size_t i = 0; i < n; i++) {
            const online_arena_t *a = &o->arena[o->order[i]];
            if (a->target == t && a->tier > t)
                online_move(o, &r, o->order[i]);
        }
    if (r.budget >= 0.0)
        o->credit = r.budget;
    o->wanted = r.wanted;
}
