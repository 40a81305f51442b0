# Guest script for tests/interop/run.sh (run by kernel-peer's vm.sh, with
# kernel-peer's guest/lib.sh already sourced): boot, then run the host's
# commands (vm.sh send) until "stop"; unmount if still mounted; power off.
# The host drives every mount, remount and unmount, so that it can read the
# slot map between the steps.
kp_log "SERVE: mode=$KPEER_MODE mopts=$(kp_cmdline_arg kpeer.mopts)"
kp_serve
rc=0
if grep -q " $MNT ocfs2 " /proc/mounts; then kp_umount || rc=12; fi
kp_slot0
kp_dmesg 'ocfs2|OCFS2|MMP|kmmpd|BUG|WARNING|scheduling while atomic|Call Trace'
exit $rc
