/* i386 ABI probe: socketcall(SYS_SOCKET, {AF_NETLINK, SOCK_RAW, 0}) through int 0x80 on an x86_64 kernel.
 * A filter with an architecture check kills it (SIGSYS); a filter without one never sees a socket() number. */
#include <stdio.h>

int main(void) {
    unsigned long args[3] = {16, 3, 0};
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(102), "b"(1), "c"(args) : "memory");
    printf("{\"probe\": \"i386_socketcall\", \"result\": \"%s\", \"ret\": %ld}\n", ret >= 0 ? "ok" : "error", ret);
    return 0;
}
