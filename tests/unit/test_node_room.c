/*
 * test_node_room.c -- the room a node has for a migration, from
 * /proc/zoneinfo (arena/node_room.c): the arithmetic on a real 6.1 zone
 * table, hostile tables, and this machine's own file.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "arena.h"
#include "../tm_test.h"

#define PAGE 4096ull

/* Two nodes in the shape of Debian's 6.1 kernel in the rig's guest (cut
 * down: the per-node stats and pagesets that matter to the parser stay). */
static const char two_nodes[] =
    "Node 0, zone      DMA\n"
    "  per-node stats\n"
    "      nr_inactive_anon 120\n"
    "      nr_inactive_file 4000\n"
    "  pages free     3840\n"
    "        boost    0\n"
    "        min      32\n"
    "        low      40\n"
    "        high     48\n"
    "        spanned  4095\n"
    "        protection: (0, 900, 900, 900, 900)\n"
    "  pagesets\n"
    "    cpu: 0\n"
    "              count: 0\n"
    "              high:     5000\n"
    "Node 0, zone    DMA32\n"
    "  pages free     10000\n"
    "        boost    100\n"
    "        low      400\n"
    "        high     500\n"
    "        protection: (0, 0, 0, 0, 0)\n"
    "      nr_free_pages 10000\n"
    "      nr_zone_inactive_file 300\n"
    "    cpu: 1\n"
    "              high:     70000\n"
    "Node 0, zone   Normal\n"
    "  pages free     0\n"
    "        boost    0\n"
    "        low      0\n"
    "        protection: (0, 0, 0, 0, 0)\n"
    "Node 1, zone   Normal\n"
    "  pages free     2000\n"
    "        boost    0\n"
    "        low      3000\n"
    "        protection: (0, 0, 0, 0, 0)\n"
    "      nr_zone_active_file 9999\n"
    "      nr_zone_inactive_file 1500\n"
    "  node_unreclaimable:  0\n"
    "  start_pfn:           262144\n";

static void test_arithmetic(void)
{
    uint64_t room[TM_MAX_NODES], known;
    CHECK(node_room_parse(two_nodes, sizeof two_nodes - 1, PAGE, room,
                          &known));
    CHECK(known == 3);
    /* DMA: 3840 - 40 - 900 = 2900 (the node's "nr_inactive_file" is no
     * zone's); DMA32: 10000 + 300 inactive file - 400 = 9900 (the printed
     * watermarks include the boost, so it is not taken twice); the
     * per-CPU "high:" lines are no watermark of the zone */
    CHECK_MSG(room[0] == (2900 + 9900) * PAGE, "node 0: %llu pages",
              (unsigned long long)(room[0] / PAGE));
    /* below its watermark but for reclaimable cache; active cache is not
     * room: 2000 + 1500 - 3000 */
    CHECK(room[1] == 500 * PAGE);
    /* CRLF, the same figures */
    char crlf[2 * sizeof two_nodes];
    size_t n = 0;
    for (size_t i = 0; i + 1 < sizeof two_nodes; i++) {
        if (two_nodes[i] == '\n')
            crlf[n++] = '\r';
        crlf[n++] = two_nodes[i];
    }
    uint64_t room2[TM_MAX_NODES], known2;
    CHECK(node_room_parse(crlf, n, PAGE, room2, &known2));
    CHECK(known2 == 3 && room2[0] == room[0]);
}

/* Each bad zone gives no figure; good zones beside it still do. */
static void test_hostile(void)
{
    static const char *const bad[] = {
        "Node 0, zone N\n  pages free 100\n        protection: (0)\n",
        "Node 0, zone N\n  pages free 100\n low 1x\n",
        "Node 0, zone N\n  pages free -5\n low 1\n",
        "Node 0, zone N\n  pages free 100\n low 1\n protection: (0, 1\n",
        "Node 0, zone N\n  pages free 100\n low 1\n protection: 0, 1)\n",
        "Node 0, zone N\n  pages free 100\n low 1\n protection: (0) 1)\n",
        "Node 0, zone N\n  pages free 100\n low 1\n protection: ()\n",
        "Node 64, zone N\n  pages free 100\n low 1\n",
        "Node 99999999999999999999, zone N\n  pages free 100\n low 1\n",
        "Node 0 zone N\n  pages free 100\n low 1\n",
        "  pages free 100\n low 1\n", /* no zone header */
        "Node 0, zone N\n  pages free 100\n low\n",
        "Node 0, zone N\n  pages free 100\n low 1\n nr_zone_inactive_file x\n",
        "Node 0, zone N\n  pages free 1000000000000000000000\n low 1\n",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint64_t room[TM_MAX_NODES], known = 7;
        bool ok = node_room_parse(bad[i], strlen(bad[i]), PAGE, room, &known);
        CHECK_MSG(!ok && known == 0, "case %zu gave a figure", i);
    }
    /* saturation, not wrap: huge watermarks give 0, huge free the most */
    static const char sat[] =
        "Node 0, zone A\n  pages free 10\n low 18446744073709551615\n"
        " protection: (18446744073709551615)\n"
        "Node 1, zone A\n  pages free 18446744073709551615\n low 0\n"
        "Node 1, zone B\n  pages free 18446744073709551615\n low 0\n"
        "Node 2, zone B\n  pages free 100\n low 1\n low 2x\n"
        "Node 3, zone A\n  pages free 100\n low 1\n";
    uint64_t room[TM_MAX_NODES], known;
    CHECK(node_room_parse(sat, sizeof sat - 1, PAGE, room, &known));
    CHECK(known == (1u | 2u | 8u));
    CHECK(room[0] == 0 && room[1] == UINT64_MAX && room[3] == 99 * PAGE);
    CHECK(!node_room_parse(two_nodes, sizeof two_nodes - 1, 0, room, &known));
}

/* This machine's file: every node with memory gets a figure, no more
 * than it has. */
static void test_this_machine(void)
{
    uint64_t room[TM_MAX_NODES], known;
    /* every Linux with /proc has the zone table: no skip */
    int rc = node_room_read(NULL, room, &known);
    CHECK_MSG(rc == 0, "/proc/zoneinfo gave no figure: errno %d", errno);
    if (rc != 0)
        return;
    const tm_topology_t *t = topology_get();
    REQUIRE_VOID(t != NULL);
    for (unsigned i = 0; i < t->nnodes; i++) {
        unsigned id = t->nodes[i].id;
        if (id >= TM_MAX_NODES || t->nodes[i].capacity_bytes == 0)
            continue;
        CHECK_MSG(known >> id & 1, "node %u has no figure", id);
        CHECK_MSG(room[id] <= t->nodes[i].capacity_bytes, "node %u: room %llu "
                  "over its %llu bytes", id, (unsigned long long)room[id],
                  (unsigned long long)t->nodes[i].capacity_bytes);
    }
    CHECK(node_room_read("/nonexistent/zoneinfo", room, &known) == -1 &&
          known == 0);
}

int main(void)
{
    test_arithmetic();
    test_hostile();
    test_this_machine();
    return tm_test_done(__FILE__);
}
