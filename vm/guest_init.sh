#!/bin/busybox sh
# The guest's /init (packed into the initrd by vm/initrd.py; it runs as PID 1, as root).
#
# Kernel command line: dtx.disk=DEV, the build's disk (vm/disk.py): store/ holds the input
# closure and receives the outputs, build/ is the build directory, dtx/ the step scripts. It
# loads the modules listed in /lib/modules/load-order, mounts the disk, binds store/ at
# /nix/store and build/ at /build, prints the ready marker and hands the console to a shell that
# the host drives (vm/console.py).
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/modules/load-order); do
    insmod "/lib/modules/$m.ko" || echo "dtx-init: cannot load module $m"
done
DISK=
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        dtx.disk=*) DISK=${arg#dtx.disk=} ;;
    esac
done
n=0
while [ ! -b "/dev/$DISK" ]; do
    n=$((n + 1))
    if [ $n -gt 500 ]; then echo "dtx-init: disk /dev/$DISK did not appear"; break; fi
    sleep 0.01
done
mkdir -p /nix/.disk /nix/store /etc /root /dev/pts /dev/shm
mount -t ext4 "/dev/$DISK" /nix/.disk || echo "dtx-init: cannot mount the build disk"
mount --bind /nix/.disk/store /nix/store
mount --bind /nix/.disk/build /build
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
