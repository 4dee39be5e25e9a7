/* The contract between browser.c (in browserd) and the supervisor process (supervisor.c,
 * browserd's own binary run as `browserd __browser-supervisor ...`). Internal to src/cdp.
 *
 * Command line:
 *   browserd __browser-supervisor --parent PID --profile DIR [--chromium-stderr] -- CHROMIUM ARGS...
 *     --parent   browserd's pid: if the supervisor's parent is already another process when
 *                it has armed its parent-death signal, browserd died in between; it exits.
 *     --profile  ROOT/<final profile name>; created here (must not exist), deleted at the end.
 *
 * Descriptors it is started with:
 *   0, 1  /dev/null;  2  browserd's stderr (one key=value line per event)
 *   3, 4  the CDP pipe (Chromium reads fd 3 and writes fd 4); inherited by Chromium, closed in
 *         the supervisor right after the fork so that browserd sees EOF when Chromium is gone
 *   5     the status pipe (supervisor -> browserd), lines of text:
 *           "pid N\n"             Chromium's main process started (N is also its pgid)
 *           "end exit N\n"        Chromium exited by itself with code N
 *           "end signal N\n"      Chromium died of signal N (not sent by the supervisor)
 *           "end killed N\n"      the supervisor got signal N (SIGTERM from browserd, or its
 *                                 parent-death signal) and killed Chromium
 *           "end error ERRNO STEP\n"  setup failed at STEP (root, profile, fork, exec, ...)
 *         An "end" line is written only after every process is dead and the profile is
 *         deleted, so it is the supervisor's promise that the session left nothing behind.
 * Exit status: 0 after an "end exit/signal/killed" line, 1 after "end error" (or, without any
 * line, when browserd was already gone at its start), 2 on usage. */
#ifndef BROWSERD_CDP_SUPERVISOR_H
#define BROWSERD_CDP_SUPERVISOR_H

#define SUPERVISOR_CDP_IN_FD 3  /* Chromium reads CDP messages here */
#define SUPERVISOR_CDP_OUT_FD 4 /* Chromium writes CDP messages here */
#define SUPERVISOR_STATUS_FD 5
#define SUPERVISOR_STATUS_MAX_LINE 128

/* The hidden supervisor mode: `browserd __browser-supervisor ...` (argv[1] is the command, see
 * BROWSER_SUPERVISOR_COMMAND in browser.h). Returns the process exit status. */
int supervisor_main(int argc, char **argv);

#endif
