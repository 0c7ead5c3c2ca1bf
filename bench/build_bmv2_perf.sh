#!/usr/bin/env bash
# Build a "performance" simple_switch_grpc, outside the project, for bench/forwarding.py.
#
# Why: the stock BMv2 build has its logging macros compiled in, so simple_switch formats a log
# string for every table, action and header it touches even at --log-level off, and it has the
# nanomsg event logger on. Both are a fixed per-packet cost that dwarfs a P4 program's own
# work. BMv2's docs/performance.md recommends, for throughput, configuring with
#   --disable-logging-macros --disable-elogger  and  -O3.
# We also leave out structured packet tracing (--without-packet-trace; on by default, and
# newer than that advice): compiled in, it keeps BMv2's event hooks (BMELOG) in every parser
# state, table and action, whatever --disable-elogger says.
# bench/forwarding.py measures icpn.p4 against a port-to-port baseline on the stock build AND,
# when it finds one, on such a build (env ICPN_BMV2_PERF, default /opt/bmv2-perf/bin/...).
#
# A perf build has no per-packet log: tests that read BMv2's log (e.g. the "log" assertions of
# some PTF tests) will not find their lines on it. Use it for benchmarks, not for debugging.
#
# Usage:
#   bench/build_bmv2_perf.sh SRC_DIR [PREFIX]
#     SRC_DIR  a checkout of https://github.com/p4lang/behavioral-model (e.g. the commit of the
#              installed BMv2: `simple_switch_grpc --version` prints VERSION-COMMIT)
#     PREFIX   install prefix, default /opt/bmv2-perf (keep it apart from the stock /usr/local)
#   env JOBS   parallel make jobs (default 2)
#
# Needs PI installed (headers in /usr/local/include/PI, libs in /usr/local/lib) and, on
# Debian 12: autoconf automake libtool pkg-config g++ libpcap-dev libnanomsg-dev libjsoncpp-dev
# libxxhash-dev libgmp-dev libboost-dev libboost-program-options-dev libboost-filesystem-dev
# libboost-system-dev libboost-thread-dev libprotobuf-dev protobuf-compiler libgrpc++-dev
# protobuf-compiler-grpc.
#
# Patches: every bench/bmv2_perf_patches/*.patch is applied to SRC_DIR first (skipped when it
# is already applied; PATCHES=0 builds without them). Each is a change to BMv2 itself that
# makes simple_switch's per-packet cost depend less on the program's size; each says why in
# its own text. Their names go to PREFIX/share/icpn/bmv2-perf-patches, which
# bench/forwarding.py reports. APPLY_ONLY=1 applies them and stops (to build otherwise).
#
# Only the parts simple_switch_grpc needs are built and installed (the core, PI, services,
# simple_switch and simple_switch_grpc); Thrift is left out, as the project drives switches
# through P4Runtime only. The rpath makes the binary load PREFIX/lib's libbm*, not the stock
# ones in /usr/local/lib (check with `ldd PREFIX/bin/simple_switch_grpc`).
set -euo pipefail

src=${1:?usage: $0 SRC_DIR [PREFIX]}
prefix=${2:-/opt/bmv2-perf}
jobs=${JOBS:-2}
patch_dir=$(cd "$(dirname "$0")" && pwd)/bmv2_perf_patches

# The patches form a series (each may build on the one before). Applied to a clean tree in
# order; a tree that already carries exactly the series (an earlier run) is built as it is;
# anything else stops the build rather than guess.
applied=()
patches=()
if [[ ${PATCHES:-1} != 0 ]]; then
    shopt -s nullglob
    patches=("$patch_dir"/*.patch)
    shopt -u nullglob
elif ! git -C "$src" diff --quiet HEAD; then
    echo "PATCHES=0 but $src has changes (patches applied earlier?): start from a clean checkout" >&2
    exit 1
fi
if (( ${#patches[@]} > 0 )); then
    mapfile -t touched < <(git -C "$src" apply --numstat "${patches[@]}" | cut -f3 | sort -u)
    series_index=$(mktemp)
    trap 'rm -f "$series_index"' EXIT
    GIT_INDEX_FILE=$series_index git -C "$src" read-tree HEAD
    GIT_INDEX_FILE=$series_index git -C "$src" apply --cached "${patches[@]}"
    if GIT_INDEX_FILE=$series_index git -C "$src" diff --quiet -- "${touched[@]}"; then
        echo "already applied: ${patches[*]##*/}"
    elif git -C "$src" diff --quiet HEAD -- "${touched[@]}"; then
        git -C "$src" apply "${patches[@]}"
        echo "applied: ${patches[*]##*/}"
    else
        echo "$src has changes of its own to ${touched[*]}: start from a clean checkout" >&2
        exit 1
    fi
    for patch in "${patches[@]}"; do
        applied+=("$(basename "$patch")")
    done
fi
if [[ ${APPLY_ONLY:-0} != 0 ]]; then
    exit 0
fi

cd "$src"
./autogen.sh
./configure --prefix="$prefix" --with-pi --without-thrift \
    --disable-logging-macros --disable-elogger --without-packet-trace \
    CXXFLAGS="-O3 -g0" CFLAGS="-O3 -g0" \
    CPPFLAGS="-I/usr/local/include" \
    LDFLAGS="-L/usr/local/lib -Wl,-rpath,$prefix/lib"

# In dependency order (see the top-level Makefile.am's SUBDIRS).
parts=(third_party src include PI services targets/simple_switch targets/simple_switch_grpc)
for part in "${parts[@]}"; do
    make -C "$part" -j"$jobs"
done
for part in "${parts[@]}"; do
    make -C "$part" install
done

install -d "$prefix/share/icpn"
printf '%s\n' "${applied[@]}" > "$prefix/share/icpn/bmv2-perf-patches"

echo "built: $prefix/bin/simple_switch_grpc ($("$prefix/bin/simple_switch_grpc" --version))"
ldd "$prefix/bin/simple_switch_grpc" | grep -E 'libbm|libsimple' || true
