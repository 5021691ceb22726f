# Report the kernel features OpenShell's layers depend on, from inside a container (on macOS: inside the Docker VM).
#
# Prints one JSON object (kernel, machine, landlock{abi,state}, seccomp_filter{supported,exit|reason}, namespaces,
# io_uring{io_uring_disabled}, cgroup_version). Perl with the modules of Debian's perl-base only (POSIX, Errno), so it
# runs in the official debian:bookworm-slim, which has perl-base but no python3.
use strict;
use warnings;
use Errno ();
use POSIX ();

my (undef, undef, $release, undef, $machine) = POSIX::uname();
# Syscall numbers (asm-generic for aarch64, the x86_64 table); landlock_create_ruleset is 444 on both.
my %SYS = (x86_64 => {prctl => 157, seccomp => 317}, aarch64 => {prctl => 167, seccomp => 277});
my ($TRUE, $FALSE) = (\1, \0);

sub errname {
    my ($n) = @_;
    local $! = $n;
    for my $name (sort keys %!) {
        return $name if $!{$name};
    }
    return "$n";
}

sub landlock {
    # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) returns the ABI version
    my $rc = syscall(444, 0, 0, 1);
    return [abi => $rc, state => "available"] if $rc > 0;
    my $err = $! + 0;
    my $state = $err == Errno::ENOSYS() ? "not built in" : $err == Errno::EOPNOTSUPP() ? "disabled at boot" : errname($err);
    return [abi => 0, state => $state];
}

sub seccomp_filter {
    # Install an allow-all filter in a forked child; success proves CONFIG_SECCOMP_FILTER.
    my $nr = $SYS{$machine};
    return [supported => undef, reason => "unknown arch $machine"] unless $nr;
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        my $filter = pack("S C C L", 0x06, 0, 0, 0x7FFF0000);    # BPF_RET|BPF_K, SECCOMP_RET_ALLOW
        my $pad = length(pack("P", undef)) - 2;                  # struct sock_fprog { u16 len; <pad>; filter * }
        my $prog = pack("S x$pad P", 1, $filter);
        syscall($nr->{prctl}, 38, 1, 0, 0, 0);                   # PR_SET_NO_NEW_PRIVS
        my $rc = syscall($nr->{seccomp}, 1, 0, $prog);           # SECCOMP_SET_MODE_FILTER
        POSIX::_exit($rc == 0 ? 0 : 10 + ($! + 0) % 100);
    }
    waitpid($pid, 0);
    my $code = ($? & 127) ? -($? & 127) : $? >> 8;
    return [supported => ($code == 0 ? $TRUE : $FALSE), exit => $code];
}

sub namespaces {
    return [map { ($_ => (-e "/proc/self/ns/$_" ? $TRUE : $FALSE)) } qw(net mnt pid user uts ipc cgroup)];
}

sub io_uring {
    my $value;
    if (open(my $fh, "<", "/proc/sys/kernel/io_uring_disabled")) {
        my $line = <$fh>;
        $value = int($1) if defined $line && $line =~ /^\s*(-?\d+)\s*$/;
        close($fh);
    }
    return [io_uring_disabled => $value];
}

sub json {
    my ($v) = @_;
    return "null" unless defined $v;
    if (ref $v eq "SCALAR") {
        return $$v ? "true" : "false";
    }
    if (ref $v eq "ARRAY") {    # an ordered object: [key => value, ...]
        my @pairs = @$v;
        my @out;
        while (my ($k, $x) = splice(@pairs, 0, 2)) {
            push @out, json_string($k) . ": " . json($x);
        }
        return "{" . join(", ", @out) . "}";
    }
    return $v if $v =~ /^-?(0|[1-9]\d*)$/;
    return json_string($v);
}

sub json_string {
    my ($s) = @_;
    $s =~ s/(["\\])/\\$1/g;
    $s =~ s/([\x00-\x1f])/sprintf("\\u%04x", ord($1))/ge;
    return "\"$s\"";
}

print json([
    kernel => $release, machine => $machine, landlock => landlock(), seccomp_filter => seccomp_filter(),
    namespaces => namespaces(), io_uring => io_uring(),
    cgroup_version => (-e "/sys/fs/cgroup/cgroup.controllers" ? 2 : 1),
]), "\n";
