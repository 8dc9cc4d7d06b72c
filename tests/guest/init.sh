#!/bin/busybox sh
# shellcheck shell=dash
# /init of the guest initramfs that run-rig.sh builds.
#
# Mounts proc, sys, dev and a tmpfs, reads the topology description from the
# kernel command line (tmg_KEY=VALUE becomes the environment variable
# TM_KEY=VALUE for the tests, tmenv_NAME=VALUE becomes NAME=VALUE), runs every
# /tests/guest_* program in order, then every /tests/dyn_* program (dynamic
# programs run under the LD_PRELOAD library, after the static ones), and
# powers off.  Test output goes to the second serial port (ttyS1), which
# run-rig.sh saves as the results log; the kernel's console stays on ttyS0.
#
# Lines for the host (everything else is diagnostics):
#   TMGUEST BOOTED uptime=<s>        init started
#   TMGUEST RUN <test> uptime=<s>    a test program starts
#   TMTEST PASS|FAIL|SKIP <test>/<check>[: reason]   printed by the tests
#   TMGUEST END <test> rc=<n> uptime=<s>  it ended (init adds a FAIL line if it
#                                    died by a signal or timed out)
#   TMGUEST DONE uptime=<s>          all tests ran; poweroff follows

/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp

if [ -c /dev/ttyS1 ]; then
    exec >/dev/ttyS1 2>&1
else
    exec >/dev/console 2>&1
fi

uptime_s() { cut -d' ' -f1 /proc/uptime; }
echo "TMGUEST BOOTED uptime=$(uptime_s) kernel=$(uname -r)"

per_test_timeout=300
# shellcheck disable=SC2013 # words, not lines
for word in $(cat /proc/cmdline); do
    case "$word" in
    tmg_timeout=*) per_test_timeout=${word#tmg_timeout=} ;;
    tmenv_*=*)
        # TM_GUEST_ENV on the host: passed to the tests as it is.
        word=${word#tmenv_}
        export "${word%%=*}=${word#*=}"
        echo "  [init] ${word%%=*}=${word#*=}"
        ;;
    tmg_*=*)
        key=${word%%=*}
        key=TM_$(echo "${key#tmg_}" | tr '[:lower:]' '[:upper:]')
        export "$key=${word#*=}"
        ;;
    esac
done
env | grep '^TM_' | sort | sed 's/^/  [init] /'

for t in /tests/guest_* /tests/dyn_*; do
    [ -x "$t" ] || continue
    name=${t##*/}
    echo "TMGUEST RUN $name uptime=$(uptime_s)"
    # A test that hangs is killed; the others still run.
    timeout -s KILL "$per_test_timeout" "$t"
    rc=$?
    if [ "$rc" -ge 128 ]; then
        sig=$((rc - 128))
        if [ "$sig" -eq 9 ]; then
            echo "TMTEST FAIL ${name#guest_}: killed by SIGKILL (timed out after ${per_test_timeout}s in the guest, or OOM-killed)"
        else
            echo "TMTEST FAIL ${name#guest_}: killed by signal $sig"
        fi
    elif [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
        echo "TMTEST FAIL ${name#guest_}: exited with status $rc"
    fi
    echo "TMGUEST END $name rc=$rc uptime=$(uptime_s)"
done

echo "TMGUEST DONE uptime=$(uptime_s)"
sync
poweroff -f
