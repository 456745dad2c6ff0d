#!/bin/bash
# End to end, real kernel: fsnoted with each backend on a private tmpfs and
# a loop-mounted ext4, watched through `fsnotectl watch --json`.  Performs
# mkdir / create / write / chmod / rename within and across directories /
# unlink / rmdir / rename of a directory with contents / unmount, and checks
# the exact records: type, path, dest, is_dir, order, increasing IDs.
set -euo pipefail
. "$(dirname "$0")/common.sh"
e2e_require_root
e2e_enter_namespace "$@"

check_tree() {  # BACKEND FSTYPE MOUNTPOINT
    local backend=$1 fstype=$2 top=$3
    local w=$top/w
    mkdir -p "$w"
    e2e_start_daemon --backend "$backend"
    e2e_watch "$w" --json
    # paced: the kernel merges records for one name while they wait in its
    # queue, so back-to-back operations would have no single right order
    (
        cd "$w"
        step() { "$@"; sleep 0.03; }
        step mkdir d
        step sh -c 'echo hello > d/f'
        step chmod 600 d/f
        step mv d/f d/g
        step mkdir e
        step mv d/g e/g
        step rm e/g
        step rmdir e
        step mkdir m
        step mkdir m/n
        step touch m/n/x
        step mv m m2
        step touch m2/n/y
        step touch END
    )
    e2e_wait_for_path "$w/END"
    # type path dest is_dir, paths relative to the watched directory
    jq -r --arg w "$w/" 'select(.type != "modify") |
        [.type, (.path | ltrimstr($w)), ((.dest // "-") | ltrimstr($w)), (.is_dir | tostring)] | join(" ")' \
        "$E2E_OUT" > "$E2E_TMP/got"
    cat > "$E2E_TMP/want" <<'WANT'
create d - true
create d/f - false
close_write d/f - false
attrib d/f - false
rename d/f d/g false
create e - true
rename d/g e/g false
delete e/g - false
delete e - true
create m - true
create m/n - true
create m/n/x - false
close_write m/n/x - false
rename m m2 true
create m2/n/y - false
close_write m2/n/y - false
create END - false
WANT
    e2e_expect_subsequence "$E2E_TMP/want" "$E2E_TMP/got" "$backend on $fstype"
    # nothing under the old name after the directory moved
    ! grep -q ' m/n/y ' "$E2E_TMP/got" || e2e_fail "$backend/$fstype: event under the old directory name"
    # IDs strictly increase
    jq -r .id "$E2E_OUT" | awk 'NR > 1 && $1 <= prev { bad = 1 } { prev = $1 } END { exit bad }' ||
        e2e_fail "$backend/$fstype: IDs do not strictly increase"
    # every record has an absolute path under the tree
    e2e_jq_any "$E2E_OUT" '.path | startswith($w) | not' --arg w "$w" &&
        e2e_fail "$backend/$fstype: a path outside the watched tree"
    e2e_stop_watch
    e2e_stop_daemon
    e2e_pass "$backend on $fstype: $(wc -l < "$E2E_TMP/got") records as expected"
}

check_unmount() {  # BACKEND
    local backend=$1
    local img=$E2E_TMP/unmount.img mnt=$E2E_TMP/unmount
    truncate -s 32M "$img"
    mkfs.ext4 -q -F "$img"
    mkdir -p "$mnt"
    mount -o loop "$img" "$mnt"
    mkdir "$mnt/w"
    e2e_start_daemon --backend "$backend"
    e2e_watch "$mnt/w" --json
    touch "$mnt/w/before"
    e2e_wait_for_path "$mnt/w/before"
    # the daemon must not pin the filesystem: a plain umount succeeds
    umount "$mnt" || e2e_fail "$backend: umount of a watched filesystem failed"
    e2e_wait_for_type unmount
    e2e_jq_any "$E2E_OUT" '.type == "unmount" and .path == $p' --arg p "$mnt/w" ||
        e2e_fail "$backend: the unmount record does not name the subscription root"
    e2e_stop_watch
    e2e_stop_daemon
    e2e_pass "$backend: unmount ends the subscription with an unmount record"
}

mkdir -p "$E2E_TMP/tmpfs" "$E2E_TMP/ext4"
mount -t tmpfs e2e "$E2E_TMP/tmpfs"
truncate -s 64M "$E2E_TMP/ext4.img"
mkfs.ext4 -q -F "$E2E_TMP/ext4.img"
mount -o loop "$E2E_TMP/ext4.img" "$E2E_TMP/ext4"

for backend in fanotify inotify; do
    check_tree "$backend" tmpfs "$E2E_TMP/tmpfs/$backend"
    check_tree "$backend" ext4 "$E2E_TMP/ext4/$backend"
    check_unmount "$backend"
done
e2e_summary
