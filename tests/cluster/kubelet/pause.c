/*
 * The pod sandbox's process for tests/cluster/kubelet.sh: containerd starts one per pod to hold the pod's
 * namespaces (network, IPC, and PID when shared), so it must do nothing, use nothing, and go away cleanly.
 * No image can be pulled on the test machines, hence our own instead of registry.k8s.io/pause.
 *
 * - SIGTERM / SIGINT: exit 0 at once (containerd stops the sandbox with SIGTERM, then SIGKILL after a grace
 *   period: answering the first saves that wait on every pod deletion).
 * - SIGCHLD: reap every exited child. With a shared PID namespace this process is PID 1 of the pod, and
 *   orphans are re-parented to it: unreaped they would stay zombies for the pod's lifetime.
 * - Everything else is blocked and waited for synchronously (sigwait), so no handler runs in signal context
 *   and no signal is lost between a check and a sleep.
 *
 * Built static (gcc -static) so that the image is this one file: no libc, no shell, no loader in it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void reap_children(void) {
    /* WNOHANG: several children may have exited behind one SIGCHLD; stop when none is left to reap. */
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
        puts("mlgit-pause 1");
        return 0;
    }
    sigset_t waited;
    sigfillset(&waited);
    /* Block every signal that can be blocked, then take them one at a time with sigwait. */
    if (sigprocmask(SIG_BLOCK, &waited, NULL) != 0) {
        perror("pause: sigprocmask");
        return 1;
    }
    if (getpid() != 1) {
        /* Not PID 1 (the pod shares the host's or another PID namespace): say so, as kubelet's pause does. */
        fputs("pause: warning: not running as PID 1\n", stderr);
    }
    for (;;) {
        int sig = 0;
        int err = sigwait(&waited, &sig);
        if (err != 0) {
            if (err == EINTR) {
                continue;
            }
            fprintf(stderr, "pause: sigwait: %s\n", strerror(err));
            return 1;
        }
        switch (sig) {
        case SIGTERM:
        case SIGINT:
            reap_children();
            return 0;
        case SIGCHLD:
            reap_children();
            break;
        default:
            /* SIGHUP, SIGUSR1, SIGPIPE, ...: a sandbox has no use for them; ignore rather than die. */
            break;
        }
    }
}
