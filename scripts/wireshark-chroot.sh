#!/usr/bin/env bash
# Debian chroots with newer Wireshark releases, to prove lblab/lbreport on them (as root).
#
#   scripts/wireshark-chroot.sh build [SUITE...]    build or reuse (default: every suite)
#   scripts/wireshark-chroot.sh run [--user] [--repo DIR] SUITE -- CMD [ARG...]
#                                                   run CMD inside, as root or as lblabuser
#   scripts/wireshark-chroot.sh path SUITE          print the chroot's folder
#   scripts/wireshark-chroot.sh status              suites, folders, tshark versions
#
# Suites: trixie (Debian 13, Wireshark 4.4) and forky (Debian testing, Wireshark 4.6).
# Chroots live in a fixed cache folder, /var/cache/lblab/chroots/SUITE, and are reused while
# their recipe (RECIPE below) is unchanged; LBLAB_CHROOT_REBUILD=1 forces a rebuild. A build
# holds an exclusive lock on SUITE.lock, a run a shared one, so two builds of one suite never
# overlap and a rebuild never removes a chroot in use.
#
# Inside: tshark, python3 with a venv in /opt/lblab/venv holding lbreport's dependencies,
# an unprivileged user lblabuser, the host's extra CA certificates. During a run, /proc, /sys,
# /dev, /dev/pts and /dev/shm are bind-mounted, and the repo checkout (--repo, default: the
# one this script is in) read-only at /lblab/src; the mounts are made in a private mount
# namespace (unshare) when the kernel allows it, and are unmounted on exit either way.
# The environment inside is clean: PATH, HOME, LANG, TERM, proxies, LBLAB_* and PIP_CERT.
set -euo pipefail

CACHE=/var/cache/lblab/chroots
SUITES=(trixie forky)
USER_NAME=lblabuser
SELF=$(readlink -f "$0")
DEFAULT_REPO=$(cd "$(dirname "$SELF")/.." && pwd)
PACKAGES=(tshark python3 python3-venv python3-pip ca-certificates)
# Bump when the build steps change: chroots with another recipe are rebuilt.
RECIPE="1 ${PACKAGES[*]} venv:typer,rich,lxml,pyshark<0.7,setuptools>=77,wheel"

die() { echo "wireshark-chroot: $*" >&2; exit 1; }
say() { echo "wireshark-chroot: $*" >&2; }

known_suite() {
    local s
    for s in "${SUITES[@]}"; do [ "$s" = "$1" ] && return 0; done
    die "unknown suite '$1' (known: ${SUITES[*]})"
}

# Debian's mirror, as this machine's apt sources name it (never hard-coded).
debian_mirror() {
    if [ -n "${LBLAB_DEBIAN_MIRROR:-}" ]; then echo "$LBLAB_DEBIAN_MIRROR"; return; fi
    local uri="" f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        # deb822 stanzas: the first URI of the first "deb" stanza that is not a security one.
        uri=$(awk 'BEGIN { RS = ""; FS = "\n" }
            {
                types = ""; uris = ""; suites = ""
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^Types:/) types = $i
                    if ($i ~ /^URIs:/) uris = $i
                    if ($i ~ /^Suites:/) suites = $i
                }
                if (types ~ /[ \t]deb([ \t]|$)/ && uris != "" && suites !~ /security/ \
                    && uris !~ /security/) {
                    split(uris, u, /[ \t]+/); print u[2]; exit
                }
            }' "$f")
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        uri=$(awk '$1 == "deb" && $0 !~ /security/ {
                    for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; exit }
                  }' "$f")
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
    die "no Debian mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list (set LBLAB_DEBIAN_MIRROR)"
}

chroot_dir() { echo "$CACHE/$1"; }

is_ready() { [ -f "$1/.lblab-ready" ] && [ "$(head -1 "$1/.lblab-ready")" = "$RECIPE" ]; }

mounted_under() { findmnt -rn -o TARGET | awk -v d="$1" 'index($0, d "/") == 1 || $0 == d'; }

# Holds a lock on the suite for the rest of this process (fd 9): -x exclusive, -s shared.
lock_suite() {
    mkdir -p "$CACHE"
    exec 9>"$CACHE/$2.lock"
    flock "$1" -w 3600 9 || die "timed out waiting for the lock on $CACHE/$2.lock"
}

# ---- mounts -------------------------------------------------------------------------------

MOUNTED=()
unmount_all() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTED[i]}" 2>/dev/null || umount -l "${MOUNTED[i]}" 2>/dev/null || true
    done
    MOUNTED=()
}

bind() {  # bind SRC DEST [ro]
    mkdir -p "$2"
    mount --bind "$1" "$2"
    MOUNTED+=("$2")
    if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}

mount_all() {  # mount_all DIR REPO
    local dir=$1 repo=$2
    [ -z "$(mounted_under "$dir")" ] || [ -n "${LBLAB_IN_NS:-}" ] \
        || say "note: $dir already has mounts (another run?); adding this run's own"
    bind /proc "$dir/proc"
    bind /sys "$dir/sys"
    bind /dev "$dir/dev"
    bind /dev/pts "$dir/dev/pts"
    bind /dev/shm "$dir/dev/shm"
    if [ -n "$repo" ]; then bind "$repo" "$dir/lblab/src" ro; fi
    cp -L /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
}

clean_env() {  # the environment a command gets inside the chroot
    local home=$1 v
    printf '%s\n' "PATH=/opt/lblab/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        "HOME=$home" LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=dumb \
        PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
        PIP_DEFAULT_TIMEOUT=180
    for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
        [ -n "${!v:-}" ] && printf '%s\n' "$v=${!v}"
    done
    env | grep -E '^LBLAB_[A-Z0-9_]+=' | grep -v -E '^LBLAB_(IN_NS|CHROOT_REBUILD)=' || true
}

# in_chroot DIR ASUSER CMD...: runs CMD in DIR (mounts must be in place).
in_chroot() {
    local dir=$1 asuser=$2; shift 2
    local home=/root spec=()
    if [ "$asuser" = 1 ]; then
        local ids
        ids=$(awk -F: -v u="$USER_NAME" '$1 == u { print $3 ":" $4 }' "$dir/etc/passwd")
        [ -n "$ids" ] || die "no user $USER_NAME in $dir"
        spec=(--userspec="$ids" --groups="${ids#*:}")
        home=/home/$USER_NAME
    fi
    local envs=()
    mapfile -t envs < <(clean_env "${LBLAB_HOME:-$home}")
    local cwd=/
    [ -d "$dir/lblab/src/plugins" ] && cwd=/lblab/src
    chroot "${spec[@]}" "$dir" /usr/bin/env -i "${envs[@]}" /bin/sh -c 'cd "$1" && shift && exec "$@"' \
        sh "$cwd" "$@"
}

# with_mounts DIR REPO ASUSER CMD...: mounts, runs CMD in the chroot, unmounts. Re-executes
# itself in a private mount namespace when it can, so nothing leaks even on SIGKILL.
with_mounts() {
    local dir=$1 repo=$2 asuser=$3; shift 3
    if [ -z "${LBLAB_IN_NS:-}" ] && unshare --mount --propagation private true 2>/dev/null; then
        LBLAB_IN_NS=1 exec unshare --mount --propagation private bash \
            "$SELF" _inside "$dir" "$repo" "$asuser" "$@"
    fi
    _inside "$dir" "$repo" "$asuser" "$@"
}

_inside() {
    local dir=$1 repo=$2 asuser=$3; shift 3
    trap unmount_all EXIT
    trap 'exit 130' INT TERM
    mount_all "$dir" "$repo"
    local rc=0
    in_chroot "$dir" "$asuser" "$@" || rc=$?
    unmount_all
    return $rc
}

# ---- build --------------------------------------------------------------------------------

apt_in() {  # apt_in DIR ARGS...: apt-get in the chroot, retried once after a fresh update
    local dir=$1; shift
    in_chroot "$dir" 0 env DEBIAN_FRONTEND=noninteractive apt-get -q -y "$@" && return 0
    say "apt-get $* failed; retrying once after apt-get update"
    sleep 5
    in_chroot "$dir" 0 env DEBIAN_FRONTEND=noninteractive apt-get -q -y update || true
    in_chroot "$dir" 0 env DEBIAN_FRONTEND=noninteractive apt-get -q -y "$@"
}

# Runs in the build's mount namespace: the steps after debootstrap.
_provision() {
    local dir=$1
    trap unmount_all EXIT
    trap 'exit 130' INT TERM
    mount_all "$dir" ""
    # Testing's Release file can be past its Valid-Until; no recommends keeps it small.
    cat >"$dir/etc/apt/apt.conf.d/90lblab" <<'EOF'
Acquire::Check-Valid-Until "false";
Acquire::Retries "3";
APT::Install-Recommends "false";
EOF
    # tshark's debconf question (non-root capture): keep the default, no prompt.
    echo "wireshark-common wireshark-common/install-setuid boolean false" \
        | in_chroot "$dir" 0 debconf-set-selections
    # The host's extra CA certificates (a TLS-inspecting proxy's, say), for pip.
    mkdir -p "$dir/usr/local/share/ca-certificates"
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/"
    fi
    apt_in "$dir" update >/dev/null
    apt_in "$dir" install "${PACKAGES[@]}" >"$dir/.lblab-apt.log" 2>&1 \
        || { tail -30 "$dir/.lblab-apt.log" >&2; die "apt-get install failed in $dir"; }
    in_chroot "$dir" 0 update-ca-certificates >/dev/null 2>&1
    in_chroot "$dir" 0 apt-get clean
    if ! grep -q "^$USER_NAME:" "$dir/etc/passwd"; then
        in_chroot "$dir" 0 useradd --create-home --shell /bin/bash "$USER_NAME"
    fi
    # lbreport's dependencies (pyproject.toml), so a test run only installs lbreport itself.
    in_chroot "$dir" 0 python3 -m venv /opt/lblab/venv
    local pip=(/opt/lblab/venv/bin/python -m pip install -q)
    in_chroot "$dir" 0 "${pip[@]}" --upgrade pip \
        || in_chroot "$dir" 0 "${pip[@]}" --upgrade pip
    in_chroot "$dir" 0 "${pip[@]}" 'typer>=0.12' 'rich>=13' 'lxml>=5' 'pyshark>=0.6,<0.7' \
        'setuptools>=77' wheel \
        || in_chroot "$dir" 0 "${pip[@]}" 'typer>=0.12' 'rich>=13' 'lxml>=5' \
            'pyshark>=0.6,<0.7' 'setuptools>=77' wheel
    mkdir -p "$dir/lblab/src"
    unmount_all
}

build_suite() {
    local suite=$1 dir
    dir=$(chroot_dir "$suite")
    lock_suite -x "$suite"
    if is_ready "$dir" && [ -z "${LBLAB_CHROOT_REBUILD:-}" ]; then
        say "$suite: reusing $dir ($(sed -n 2p "$dir/.lblab-ready"))"
        return 0
    fi
    local start=$SECONDS mirror script tmp=$dir.building
    mirror=$(debian_mirror)
    for d in "$dir" "$tmp"; do
        [ -z "$(mounted_under "$d")" ] || die "$d has mounts (a run in progress?): $(mounted_under "$d" | tr '\n' ' ')"
    done
    rm -rf "$tmp" "$dir"
    if ! command -v debootstrap >/dev/null 2>&1; then
        say "installing debootstrap"
        # Another apt run (setup.sh's, say) may hold dpkg's lock: wait for it.
        apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
            debootstrap >/dev/null
    fi
    script=/usr/share/debootstrap/scripts/$suite
    [ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid
    say "$suite: debootstrap --variant=minbase $suite $tmp $mirror $script"
    mkdir -p "$CACHE"
    if ! debootstrap --variant=minbase "$suite" "$tmp" "$mirror" "$script" >"$CACHE/$suite.debootstrap.log" 2>&1; then
        say "debootstrap failed once; retrying ($CACHE/$suite.debootstrap.log)"
        rm -rf "$tmp"
        debootstrap --variant=minbase "$suite" "$tmp" "$mirror" "$script" >"$CACHE/$suite.debootstrap.log" 2>&1 \
            || { tail -20 "$CACHE/$suite.debootstrap.log" >&2; die "debootstrap $suite failed"; }
    fi
    # Mounts live only while provisioning; in a private namespace when possible.
    if unshare --mount --propagation private true 2>/dev/null; then
        LBLAB_IN_NS=1 unshare --mount --propagation private bash "$SELF" _provision "$tmp"
    else
        ( _provision "$tmp" )
    fi
    [ -z "$(mounted_under "$tmp")" ] || die "mounts left under $tmp"
    mv "$tmp" "$dir"
    local version
    version=$(chroot "$dir" tshark --version 2>/dev/null | head -1)
    printf '%s\n%s, built %s in %ss\n' "$RECIPE" "$version" "$(date -u +%FT%TZ)" \
        "$((SECONDS - start))" >"$dir/.lblab-ready"
    say "$suite: built $dir in $((SECONDS - start))s ($version, $(du -sh "$dir" | cut -f1))"
}

# ---- commands -----------------------------------------------------------------------------

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    build)
        [ "$(id -u)" = 0 ] || die "build needs root"
        [ $# -gt 0 ] || set -- "${SUITES[@]}"
        for s in "$@"; do known_suite "$s"; done
        for s in "$@"; do ( build_suite "$s" ); done
        ;;
    run)
        [ "$(id -u)" = 0 ] || die "run needs root"
        asuser=0 repo=$DEFAULT_REPO
        while [ $# -gt 0 ]; do
            case "$1" in
                --user) asuser=1; shift ;;
                --root) asuser=0; shift ;;
                --repo) repo=$(cd "$2" && pwd); shift 2 ;;
                --no-repo) repo=""; shift ;;
                -*) die "run: unknown option $1" ;;
                *) break ;;
            esac
        done
        [ $# -ge 1 ] || die "run: which suite?"
        suite=$1; shift
        known_suite "$suite"
        [ "${1:-}" = "--" ] && shift
        [ $# -ge 1 ] || set -- /bin/bash
        dir=$(chroot_dir "$suite")
        lock_suite -s "$suite"
        is_ready "$dir" || die "$suite: no chroot at $dir (run: $0 build $suite)"
        with_mounts "$dir" "$repo" "$asuser" "$@"
        ;;
    path)
        [ $# -eq 1 ] || die "path SUITE"
        known_suite "$1"
        chroot_dir "$1"
        ;;
    status)
        for s in "${SUITES[@]}"; do
            d=$(chroot_dir "$s")
            if is_ready "$d"; then echo "$s $d $(sed -n 2p "$d/.lblab-ready")"
            else echo "$s $d not built"; fi
        done
        ;;
    _inside) _inside "$@" ;;
    _provision) _provision "$@" ;;
    *) sed -n '2,9p' "$SELF" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
