#!/bin/busybox sh
# The guest's /init (packed into the initrd by vm/initrd.py; it runs as PID 1, as root).
#
# Kernel command line: dtx.in=DEV (the read-only input disk: store/ = the input closure,
# dtx/ = the step scripts), dtx.out=DEV (the writable output disk: store/ receives the
# outputs, build/ is the build directory). It loads the modules listed in
# /lib/modules/load-order, mounts /nix/store as an overlay (inputs below, the output disk's
# store/ above), bind-mounts /build, prints the ready marker and hands the console to a shell
# that the host drives (vm/console.py).
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/modules/load-order); do
    insmod "/lib/modules/$m.ko" || echo "dtx-init: cannot load module $m"
done
IN= OUT=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        dtx.in=*) IN=${arg#dtx.in=} ;;
        dtx.out=*) OUT=${arg#dtx.out=} ;;
    esac
done
n=0
while [ ! -b "/dev/$IN" ] || [ ! -b "/dev/$OUT" ]; do
    n=$((n + 1))
    if [ $n -gt 500 ]; then echo "dtx-init: disks /dev/$IN and /dev/$OUT did not appear"; break; fi
    sleep 0.01
done
mkdir -p /nix/.ro /nix/.rw /nix/store /etc /root /dev/pts /dev/shm
mount -t ext4 -o ro "/dev/$IN" /nix/.ro || echo "dtx-init: cannot mount the input disk"
mount -t ext4 "/dev/$OUT" /nix/.rw || echo "dtx-init: cannot mount the output disk"
mkdir -p /nix/.rw/store /nix/.rw/work /nix/.rw/build
mount -t overlay overlay \
    -o lowerdir=/nix/.ro/store,upperdir=/nix/.rw/store,workdir=/nix/.rw/work /nix/store \
    || echo "dtx-init: cannot mount the store overlay"
mount --bind /nix/.rw/build /build
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
ln -s /proc/self/fd /dev/fd
echo "root:x:0:0:root:/root:/bin/sh" > /etc/passwd
echo "nobody:x:65534:65534:nobody:/var/empty:/bin/sh" >> /etc/passwd
echo "root:x:0:" > /etc/group
echo "nogroup:x:65534:" >> /etc/group
echo "127.0.0.1 localhost" > /etc/hosts
export PS1= HOME=/root
echo "DTX-GUEST""-READY"
exec sh
