/*
 * test_perf_pmu.c -- perf_pmu.c without a PMU: fake sysfs PMU directories
 * under a mkdtemp directory, release strings, and injected host facts.
 *
 *   format     format files present, absent, malformed, huge, a FIFO, a
 *              directory, a link to /dev/zero; names that are paths;
 *   set        each word gets the field's bits, and nothing else changes;
 *   period     rounding to 16, the kernel's minimum and maximum, the
 *              default, on chosen and random values;
 *   configure  every combination of cnt_ctl / swfilt / l3missonly named by
 *              the PMU and l3missonly asked for; malformed fields;
 *   host       release and perf_event_paranoid text, and this host's facts
 *              against what the test reads itself;
 *   cause      the sentence chosen for each errno, kernel, paranoid level
 *              and privilege, by its key words; every sentence fits.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../profiler/perf_internal.h"
#include "../tm_test.h"

static char root[64];

/* ---------------------------------------------------------------- files */

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE_VOID(fd >= 0);
    CHECK(write(fd, data, len) == (ssize_t)len);
    close(fd);
}

/* <root>/<pmu>/format, made once per pmu; its path into dir. */
static void pmu_dir(const char *pmu, char *dir, size_t size)
{
    char fmt[PATH_MAX];
    snprintf(dir, size, "%s/%s", root, pmu);
    snprintf(fmt, sizeof fmt, "%s/format", dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        CHECK(!"mkdir pmu dir");
    if (mkdir(fmt, 0755) != 0 && errno != EEXIST)
        CHECK(!"mkdir format dir");
}

/* <root>/<pmu>/format/<name> holding text. */
static void put_format(const char *pmu, const char *name, const char *text)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    pmu_dir(pmu, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/format/%s", dir, name);
    write_file(path, text, strlen(text));
}

static void remove_tree(int dfd)
{
    DIR *d = fdopendir(dfd);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            continue;
        int sub = openat(dirfd(d), e->d_name,
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0)
            remove_tree(sub);
        CHECK(unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) == 0);
    }
    closedir(d);
}

/* ---------------------------------------------------------------- format */

typedef struct format_case {
    const char *text;
    int word;      /* -1: malformed */
    uint64_t mask;
} format_case_t;

static const format_case_t format_cases[] = {
    {"config:19\n", 0, 1ull << 19},
    {"config2:0\n", 2, 1},
    {"config:0-7,32-35\n", 0, 0xffull | 0xfull << 32},
    {"config1:0-63\n", 1, ~0ull},
    {"config:63", 0, 1ull << 63},
    {"config:16\n", 0, 1ull << 16},
    {"config:5,5,4-6\n", 0, 0x70},
    {"config:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,"
     "24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,"
     "47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63\n", 0, ~0ull},
    {"config3:0\n", -1, 0},
    {"confi:1\n", -1, 0},
    {"CONFIG:1\n", -1, 0},
    {"config 1\n", -1, 0},
    {"config:64\n", -1, 0},
    {"config:7-3\n", -1, 0},
    {"config:\n", -1, 0},
    {"config:1,\n", -1, 0},
    {"config:1-\n", -1, 0},
    {"config:-1\n", -1, 0},
    {"config:1x\n", -1, 0},
    {"config:1\n\n", -1, 0},
    {" config:1\n", -1, 0},
    {"config:1 \n", -1, 0},
    {"config:1-2-3\n", -1, 0},
    {"config:99999999999999999999999\n", -1, 0},
    {"config:0-99999999999999999999\n", -1, 0},
    {"", -1, 0},
    {"\n", -1, 0},
};

static void test_format_text(void)
{
    char dir[PATH_MAX];
    pmu_dir("text", dir, sizeof dir);
    for (size_t i = 0; i < sizeof format_cases / sizeof format_cases[0];
         i++) {
        const format_case_t *c = &format_cases[i];
        put_format("text", "f", c->text);
        perf_format_field_t f;
        memset(&f, 0xA5, sizeof f);
        errno = 0;
        int rc = perf_format_read(dir, "f", &f);
        if (c->word < 0) {
            CHECK_MSG(rc == -1 && errno == EINVAL && !f.present &&
                          f.mask == 0,
                      "\"%s\": rc %d errno %d", c->text, rc, errno);
        } else {
            CHECK_MSG(rc == 0 && f.present && f.word == c->word &&
                          f.mask == c->mask,
                      "\"%s\": rc %d word %u mask %#llx", c->text, rc,
                      f.word, (unsigned long long)f.mask);
        }
    }
}

/* Files that are no format: a NUL inside, 1 MiB, /dev/zero, a FIFO, a
 * directory; and absences. */
static void test_format_hostile(void)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    pmu_dir("hostile", dir, sizeof dir);
    perf_format_field_t f;

    snprintf(path, sizeof path, "%s/format/nul", dir);
    write_file(path, "config:1\0junk", 13);
    CHECK(perf_format_read(dir, "nul", &f) == -1 && errno == EINVAL &&
          !f.present);

    static char big[1 << 20];
    for (size_t i = 0; i + 2 <= sizeof big; i += 2)
        memcpy(big + i, "1,", 2);
    memcpy(big, "config:", 7);
    snprintf(path, sizeof path, "%s/format/huge", dir);
    write_file(path, big, sizeof big);
    CHECK(perf_format_read(dir, "huge", &f) == -1 && errno == EINVAL);

    snprintf(path, sizeof path, "%s/format/zero", dir);
    CHECK(symlink("/dev/zero", path) == 0);
    CHECK(perf_format_read(dir, "zero", &f) == -1 && errno == EINVAL);

    snprintf(path, sizeof path, "%s/format/fifo", dir);
    CHECK(mkfifo(path, 0644) == 0);
    CHECK(perf_format_read(dir, "fifo", &f) == -1 && errno == EINVAL);

    snprintf(path, sizeof path, "%s/format/subdir", dir);
    CHECK(mkdir(path, 0755) == 0);
    CHECK(perf_format_read(dir, "subdir", &f) == -1 && errno == EINVAL);

    /* a link to a good file is read through, as sysfs's own links are */
    put_format("hostile", "good", "config2:0\n");
    snprintf(path, sizeof path, "%s/format/alias", dir);
    CHECK(symlink("good", path) == 0);
    CHECK(perf_format_read(dir, "alias", &f) == 0 && f.present &&
          f.word == 2 && f.mask == 1);

    /* absent: the file, the format dir, the PMU */
    memset(&f, 0xA5, sizeof f);
    CHECK(perf_format_read(dir, "swfilt", &f) == 0 && !f.present);
    snprintf(path, sizeof path, "%s/none", root);
    CHECK(perf_format_read(path, "cnt_ctl", &f) == 0 && !f.present);

    /* unreadable (root reads anyway) */
    put_format("hostile", "secret", "config:1\n");
    snprintf(path, sizeof path, "%s/format/secret", dir);
    CHECK(chmod(path, 0) == 0);
    if (geteuid() != 0)
        CHECK(perf_format_read(dir, "secret", &f) == -1 &&
              errno == EACCES && !f.present);

    /* names that are not file names */
    const char *bad[] = {"", ".", "..", "../hostile/format/good", "a/b",
                         "/etc/passwd",
                         "a-name-longer-than-sixty-four-characters-is-no-"
                         "format-field-name-at-all"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        CHECK_MSG(perf_format_read(dir, bad[i], &f) == -1 &&
                      errno == EINVAL && !f.present,
                  "name \"%s\"", bad[i]);
    }
}

static void test_format_set(void)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.config = 0x1;
    perf_format_field_t f = {true, 0, 1ull << 19};
    perf_format_set(&a, &f);
    CHECK(a.config == (0x1 | 1ull << 19) && a.config1 == 0 && a.config2 == 0);
    f = (perf_format_field_t){true, 1, 0xff00};
    perf_format_set(&a, &f);
    CHECK(a.config1 == 0xff00 && a.config == (0x1 | 1ull << 19));
    f = (perf_format_field_t){true, 2, 1};
    perf_format_set(&a, &f);
    CHECK(a.config2 == 1 && a.config1 == 0xff00);
    f = (perf_format_field_t){false, 0, ~0ull};
    perf_format_set(&a, &f);
    CHECK(a.config == (0x1 | 1ull << 19));
    f = (perf_format_field_t){true, 7, ~0ull}; /* never made; touches none */
    perf_format_set(&a, &f);
    CHECK(a.config == (0x1 | 1ull << 19) && a.config1 == 0xff00 &&
          a.config2 == 1);
}

/* ---------------------------------------------------------------- period */

static void test_period(void)
{
    const uint64_t min = PERF_IBS_MIN_PERIOD, max = PERF_IBS_MAX_PERIOD;
    CHECK(min == 144 && min % 16 == 0 && max % 16 == 0);
    CHECK(PERF_IBS_DEFAULT_PERIOD % 16 == 0 &&
          PERF_IBS_DEFAULT_PERIOD >= min && PERF_IBS_DEFAULT_PERIOD <= max);
    /* the default keeps ~3e9 ops/s under a tenth of 100000 samples/s */
    CHECK(3e9 / (double)PERF_IBS_DEFAULT_PERIOD < 100000 / 5);
    const uint64_t cases[][2] = {
        {0, PERF_IBS_DEFAULT_PERIOD},
        {1, min}, {15, min}, {16, min}, {143, min}, {144, 144},
        {151, 144}, {152, 160}, {160, 160},
        {20011, 20016}, {20000, 20000}, {20007, 20000}, {20008, 20016},
        {65536, 65536}, {262144, 262144},
        {max - 9, max - 16}, {max - 8, max}, {max - 1, max}, {max, max},
        {max + 1, max}, {UINT64_MAX, max}, {UINT64_MAX - 7, max},
        {1ull << 63, max},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t got = perf_ibs_round_period(cases[i][0]);
        CHECK_MSG(got == cases[i][1], "%llu -> %llu, want %llu",
                  (unsigned long long)cases[i][0], (unsigned long long)got,
                  (unsigned long long)cases[i][1]);
    }
    uint64_t rs = 0x2545F4914F6CDD1Dull;
    unsigned bad = 0;
    for (int i = 0; i < 200000; i++) {
        uint64_t x = tm_test_rand(&rs);
        uint64_t want = x >> (x & 63); /* every magnitude */
        uint64_t got = perf_ibs_round_period(want);
        bool ok = got % 16 == 0 && got >= min && got <= max;
        if (want >= min && want <= max)
            ok = ok && (got > want ? got - want : want - got) <= 8;
        bad += !ok;
    }
    CHECK_MSG(bad == 0, "%u random periods out of rule", bad);
}

/* ---------------------------------------------------------------- configure */

/* Every combination of the three fields named by the PMU, and l3missonly
 * asked for or not. */
static void test_configure_combinations(void)
{
    for (unsigned m = 0; m < 16; m++) {
        bool has_cnt = m & 1, has_sw = m & 2, has_l3 = m & 4, want_l3 = m & 8;
        char pmu[32], dir[PATH_MAX];
        snprintf(pmu, sizeof pmu, "ibs_op_%u", m & 7);
        pmu_dir(pmu, dir, sizeof dir);
        if (has_cnt)
            put_format(pmu, "cnt_ctl", "config:19\n");
        if (has_sw)
            put_format(pmu, "swfilt", "config2:0\n");
        if (has_l3)
            put_format(pmu, "l3missonly", "config:16\n");
        put_format(pmu, "rand_en", "config:57\n"); /* never ours to set */

        struct perf_event_attr a;
        memset(&a, 0, sizeof a);
        a.type = 11;
        a.freq = 1;
        perf_ibs_setup_t s;
        memset(&s, 0xA5, sizeof s);
        CHECK(perf_ibs_configure(dir, 20011, want_l3, &a, &s) == 0);
        uint64_t want_config = (has_cnt ? 1ull << 19 : 0) |
                               (has_l3 && want_l3 ? 1ull << 16 : 0);
        CHECK_MSG(a.config == want_config && a.config2 == (has_sw ? 1u : 0u)
                      && a.config1 == 0,
                  "combination %u: config %#llx config2 %#llx", m,
                  (unsigned long long)a.config,
                  (unsigned long long)a.config2);
        CHECK(s.cnt_ctl == has_cnt && s.swfilt == has_sw &&
              s.l3missonly == (has_l3 && want_l3));
        CHECK(a.type == 11 && a.freq == 0 && a.sample_period == 20016 &&
              s.period == 20016 && s.period_changed);
        CHECK(strcmp(perf_ibs_counter_name(&s), has_cnt ? "ops" : "cycles")
              == 0);
    }
}

static void test_configure_odd(void)
{
    char dir[PATH_MAX];
    struct perf_event_attr a;
    perf_ibs_setup_t s;

    /* no PMU directory at all: nothing named, the period still set */
    snprintf(dir, sizeof dir, "%s/absent", root);
    memset(&a, 0, sizeof a);
    CHECK(perf_ibs_configure(dir, 0, true, &a, &s) == 0);
    CHECK(!s.cnt_ctl && !s.swfilt && !s.l3missonly && a.config == 0 &&
          a.config2 == 0);
    CHECK(s.period == PERF_IBS_DEFAULT_PERIOD &&
          a.sample_period == PERF_IBS_DEFAULT_PERIOD && !s.period_changed);
    CHECK(strcmp(perf_ibs_counter_name(&s), "cycles") == 0);

    /* a period already right is not "changed" */
    CHECK(perf_ibs_configure(dir, 65536, false, &a, &s) == 0 &&
          s.period == 65536 && !s.period_changed);

    /* sysfs names the bits: a kernel that moved one is followed */
    pmu_dir("moved", dir, sizeof dir);
    put_format("moved", "cnt_ctl", "config1:3\n");
    put_format("moved", "swfilt", "config2:5\n");
    memset(&a, 0, sizeof a);
    CHECK(perf_ibs_configure(dir, 144, false, &a, &s) == 0);
    CHECK(a.config == 0 && a.config1 == 8 && a.config2 == 32 && s.cnt_ctl &&
          s.swfilt && !s.period_changed && a.sample_period == 144);

    /* malformed cnt_ctl (a flag 8 bits wide): left unset, EINVAL, the
     * others set all the same */
    pmu_dir("wide", dir, sizeof dir);
    put_format("wide", "cnt_ctl", "config:0-7\n");
    put_format("wide", "swfilt", "config2:0\n");
    put_format("wide", "l3missonly", "config:16\n");
    memset(&a, 0, sizeof a);
    errno = 0;
    CHECK(perf_ibs_configure(dir, 1, true, &a, &s) == -1 && errno == EINVAL);
    CHECK(!s.cnt_ctl && s.swfilt && s.l3missonly);
    CHECK(a.config == 1ull << 16 && a.config2 == 1);
    CHECK(s.period == PERF_IBS_MIN_PERIOD && s.period_changed &&
          a.sample_period == PERF_IBS_MIN_PERIOD);

    /* junk in swfilt, /dev/zero as l3missonly */
    pmu_dir("junk", dir, sizeof dir);
    put_format("junk", "cnt_ctl", "config:19\n");
    put_format("junk", "swfilt", "config9:0\n");
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/format/l3missonly", dir);
    CHECK(symlink("/dev/zero", path) == 0);
    memset(&a, 0, sizeof a);
    errno = 0;
    CHECK(perf_ibs_configure(dir, UINT64_MAX, true, &a, &s) == -1 &&
          errno == EINVAL);
    CHECK(s.cnt_ctl && !s.swfilt && !s.l3missonly);
    CHECK(a.config == 1ull << 19 && a.config2 == 0);
    CHECK(s.period == PERF_IBS_MAX_PERIOD && s.period_changed);
}

/* ---------------------------------------------------------------- host */

static void test_release(void)
{
    const struct {
        const char *s;
        int major, minor; /* -1: junk */
    } cases[] = {
        {"6.1.0-57-amd64", 6, 1},
        {"5.14.0-427.el9.x86_64", 5, 14},
        {"6.18.44-fc-v1300", 6, 18},
        {"6.2", 6, 2},
        {"10.0.0", 10, 0},
        {"4.19.0+", 4, 19},
        {"", -1, -1},
        {"6", -1, -1},
        {"6.", -1, -1},
        {".1", -1, -1},
        {"x6.1", -1, -1},
        {" 6.1", -1, -1},
        {"6.x", -1, -1},
        {"-6.1", -1, -1},
        {"6-1", -1, -1},
        {"99999999999.1", -1, -1},
        {"6.99999999999", -1, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int ma = 42, mi = 43;
        int rc = perf_kernel_release_parse(cases[i].s, &ma, &mi);
        if (cases[i].major < 0)
            CHECK_MSG(rc == -1 && errno == EINVAL && ma == 42 && mi == 43,
                      "\"%s\": rc %d", cases[i].s, rc);
        else
            CHECK_MSG(rc == 0 && ma == cases[i].major &&
                          mi == cases[i].minor,
                      "\"%s\": rc %d %d.%d", cases[i].s, rc, ma, mi);
    }
}

static void test_paranoid(void)
{
    const struct {
        const char *s;
        int v;
    } cases[] = {
        {"2\n", 2}, {"-1\n", -1}, {"3", 3}, {"0\n", 0}, {"1\n", 1},
        {"", INT_MIN}, {"\n", INT_MIN}, {"abc\n", INT_MIN},
        {"2 \n", INT_MIN}, {"2\n\n", INT_MIN}, {"-", INT_MIN},
        {"--1", INT_MIN}, {"+2", INT_MIN}, {" 2", INT_MIN},
        {"99999999999\n", INT_MIN}, {"2x", INT_MIN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_MSG(perf_paranoid_parse(cases[i].s) == cases[i].v,
                  "\"%s\" -> %d", cases[i].s,
                  perf_paranoid_parse(cases[i].s));

    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/paranoid", root);
    write_file(path, "3\n", 2);
    CHECK(perf_paranoid_read(path) == 3);
    write_file(path, "-1\n", 3);
    CHECK(perf_paranoid_read(path) == -1);
    static char big[100000];
    memset(big, '1', sizeof big);
    write_file(path, big, sizeof big);
    CHECK(perf_paranoid_read(path) == INT_MIN);
    CHECK(perf_paranoid_read("/dev/zero") == INT_MIN);
    snprintf(path, sizeof path, "%s/no-such-file", root);
    CHECK(perf_paranoid_read(path) == INT_MIN);
}

/* This host's facts, against the test harness's own reading of them. */
static void test_host_facts(void)
{
    perf_host_facts_t h;
    memset(&h, 0xA5, sizeof h);
    perf_host_facts_read(&h);
    CHECK(h.kernel_major >= 3);
    CHECK(tm_test_kernel_at_least(h.kernel_major, h.kernel_minor));
    CHECK(!tm_test_kernel_at_least(h.kernel_major, h.kernel_minor + 1));
    const char *sysctl = "/proc/sys/kernel/perf_event_paranoid";
    if (access(sysctl, R_OK) == 0)
        CHECK(h.paranoid == (int)tm_test_proc_number(sysctl, NULL, 10, 99));
    else
        CHECK(h.paranoid == INT_MIN);
    CHECK(h.privileged == (tm_test_capable(38) || tm_test_capable(21)));
}

/* ---------------------------------------------------------------- cause */

typedef struct cause_case {
    prof_sampler_kind_t kind;
    int err;
    perf_host_facts_t h;
    bool swfilt;
    const char *has[5];   /* key words the sentence must hold */
    const char *hasnt[3]; /* and must not */
} cause_case_t;

#define PEBS PROF_SAMPLER_PEBS
#define IBS PROF_SAMPLER_IBS
#define FAULTS PROF_SAMPLER_FAULTS
/* kernel, paranoid, privileged */
#define H(ma, mi, p, priv) {ma, mi, p, priv}

static const cause_case_t cause_cases[] = {
    {PEBS, ENOENT, H(6, 1, 2, false), false,
     {"no hardware PMU", "VMs", "pebs"}, {"paranoid"}},
    {IBS, ENOENT, H(6, 8, 2, false), false,
     {"no hardware PMU", "IBS"}, {"paranoid"}},
    {FAULTS, ENOENT, H(6, 8, 2, false), false,
     {"errno 2", "faults"}, {"no hardware PMU"}},
    {IBS, EINVAL, H(5, 15, 2, false), false,
     {"6.2", "5.15", "system-wide", "single process"}, {NULL}},
    {IBS, EINVAL, H(6, 1, 0, true), true,
     {"before Linux 6.2", "6.1"}, {NULL}},
    {IBS, EINVAL, H(6, 2, 2, false), false,
     {"EINVAL", "6.2"}, {"before Linux 6.2"}},
    {IBS, EINVAL, H(-1, -1, 2, false), false,
     {"EINVAL", "unknown"}, {"before Linux 6.2"}},
    {PEBS, EINVAL, H(5, 15, 2, false), false,
     {"EINVAL", "pebs"}, {"6.2"}},
    {IBS, EACCES, H(6, 8, 2, false), false,
     {"swfilt", "6.14", "perf_event_paranoid=2", "to 1", "CAP_PERFMON"},
     {"seccomp"}},
    {IBS, EPERM, H(6, 13, 3, false), false,
     {"swfilt", "6.14", "perf_event_paranoid=3", "6.13"}, {NULL}},
    {IBS, EACCES, H(6, 14, 3, false), true,
     {"perf_event_paranoid is 3", "CAP_PERFMON"}, {"swfilt"}},
    {IBS, EACCES, H(6, 8, 1, false), false,
     {"seccomp", "perf_event_paranoid"}, {"swfilt"}},
    {IBS, EACCES, H(6, 8, 2, true), false,
     {"seccomp", "CAP_PERFMON"}, {"swfilt"}},
    {IBS, EACCES, H(5, 15, 2, false), false,
     {"EACCES"}, {"swfilt", "6.14"}},
    {PEBS, EACCES, H(6, 1, 3, false), false,
     {"perf_event_paranoid is 3", "2 or below", "CAP_PERFMON", "Debian"},
     {"swfilt"}},
    {PEBS, EACCES, H(6, 1, 2, false), false,
     {"seccomp", "EACCES", "perf_event_paranoid"}, {"swfilt", "is 2"}},
    {PEBS, EPERM, H(6, 1, -1, false), false,
     {"seccomp", "EPERM"}, {NULL}},
    {PEBS, EACCES, H(6, 1, INT_MIN, false), false,
     {"cannot be read", "CAP_PERFMON"}, {"seccomp"}},
    {PEBS, EACCES, H(6, 1, 4, true), false,
     {"seccomp", "CAP_PERFMON"}, {"is 4"}},
    {IBS, EOPNOTSUPP, H(6, 8, 2, false), false,
     {"cannot sample", "interrupt", "ibs"}, {NULL}},
    {PEBS, EBUSY, H(6, 8, 2, false), false,
     {"NMI watchdog", "another perf session"}, {NULL}},
    {PEBS, EMFILE, H(6, 8, 2, false), false,
     {"EMFILE", "ulimit -n", "per thread per CPU"}, {NULL}},
    {IBS, ENFILE, H(6, 8, 2, false), false,
     {"ENFILE", "file-max"}, {"ulimit"}},
    {PEBS, ENODATA, H(6, 8, 2, false), false,
     {"mem-loads-aux", "Sapphire Rapids", "ENODATA"}, {NULL}},
    {PEBS, E2BIG, H(4, 19, 2, false), false,
     {"older", "4.19", "E2BIG"}, {NULL}},
    {PEBS, ENODEV, H(6, 8, 2, false), false, {"ENODEV"}, {NULL}},
    {FAULTS, ESRCH, H(6, 8, 2, false), false,
     {"errno 3", "faults"}, {NULL}},
};

static void test_cause(void)
{
    for (size_t i = 0; i < sizeof cause_cases / sizeof cause_cases[0]; i++) {
        const cause_case_t *c = &cause_cases[i];
        char buf[PERF_CAUSE_LEN];
        const char *s = perf_open_cause(c->kind, c->err, &c->h, c->swfilt,
                                        buf, sizeof buf);
        CHECK(s == buf);
        for (size_t k = 0; k < 5 && c->has[k] != NULL; k++)
            CHECK_MSG(strstr(s, c->has[k]) != NULL,
                      "case %zu: \"%s\" lacks \"%s\"", i, s, c->has[k]);
        for (size_t k = 0; k < 3 && c->hasnt[k] != NULL; k++)
            CHECK_MSG(strstr(s, c->hasnt[k]) == NULL,
                      "case %zu: \"%s\" holds \"%s\"", i, s, c->hasnt[k]);
    }
    /* truncated to fit, and nothing for no room */
    perf_host_facts_t h = H(6, 8, 2, false);
    char small[10];
    CHECK(strlen(perf_open_cause(PEBS, ENOENT, &h, false, small,
                                 sizeof small)) == sizeof small - 1);
    CHECK(strcmp(perf_open_cause(PEBS, ENOENT, &h, false, small, 0), "") ==
          0);
}

/* Every errno, kind and fact: one sentence, never cut by PERF_CAUSE_LEN. */
static void test_cause_sweep(void)
{
    const perf_host_facts_t facts[] = {
        H(5, 15, 2, false), H(6, 8, 3, false), H(6, 14, INT_MIN, false),
        H(-1, -1, -1, true), H(INT_MAX, INT_MAX, INT_MAX, false),
        H(6, 8, INT_MIN + 1, false),
    };
    const prof_sampler_kind_t kinds[] = {PEBS, IBS, FAULTS,
                                         PROF_SAMPLER_REFS};
    unsigned cut = 0, empty = 0;
    for (size_t f = 0; f < sizeof facts / sizeof facts[0]; f++)
        for (size_t k = 0; k < 4; k++)
            for (int err = -1; err < 140; err++)
                for (int sw = 0; sw < 2; sw++) {
                    char buf[PERF_CAUSE_LEN];
                    const char *s = perf_open_cause(kinds[k], err, &facts[f],
                                                    sw, buf, sizeof buf);
                    size_t n = strlen(s);
                    cut += n + 1 >= sizeof buf;
                    empty += n < 20;
                }
    CHECK_MSG(cut == 0 && empty == 0, "%u sentences cut, %u empty", cut,
              empty);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/tm_perf_pmu.XXXXXX");
    if (mkdtemp(root) == NULL) {
        fprintf(stderr, "mkdtemp %s failed: %s\n", root, strerror(errno));
        return 1;
    }
    test_format_text();
    test_format_hostile();
    test_format_set();
    test_period();
    test_configure_combinations();
    test_configure_odd();
    test_release();
    test_paranoid();
    test_host_facts();
    test_cause();
    test_cause_sweep();
    int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0)
        remove_tree(dfd);
    CHECK(rmdir(root) == 0);
    return tm_test_done(__FILE__);
}
