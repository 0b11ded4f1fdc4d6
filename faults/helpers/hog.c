/* gauntlet-hog: the memory hog the oom fault runs inside a target container (docker exec), so
 * that its pages are charged to the target's memory cgroup. Static, so it runs in any image.
 *
 *   gauntlet-hog <MiB> <hold-seconds> [step-MiB]
 *
 * Removes its own file first (nothing is left in the container's filesystem), then touches
 * <MiB> of anonymous memory step by step, printing progress, then holds it for <hold-seconds>
 * and exits: the fault ends by itself even if Gauntlet is gone. Exit 0 held and released,
 * 3 allocation refused. A kernel OOM kill of the target's main process ends the whole
 * container, this process with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: gauntlet-hog <MiB> <hold-seconds> [step-MiB]\n");
    return 2;
  }
  unlink(argv[0]);
  long total = atol(argv[1]);
  long hold = atol(argv[2]);
  long step = argc > 3 ? atol(argv[3]) : 8;
  if (total < 0 || hold < 0 || step < 1) {
    fprintf(stderr, "gauntlet-hog: bad arguments\n");
    return 2;
  }
  const long mib = 1L << 20;
  long done = 0;
  while (done < total) {
    long n = total - done < step ? total - done : step;
    char *p = malloc((size_t)(n * mib));
    if (!p) {
      printf("{\"event\":\"refused\",\"filled_mib\":%ld}\n", done);
      fflush(stdout);
      return 3;
    }
    for (long i = 0; i < n * mib; i += 4096) p[i] = (char)(i >> 12);
    done += n;
    printf("{\"event\":\"filled\",\"filled_mib\":%ld}\n", done);
    fflush(stdout);
  }
  printf("{\"event\":\"holding\",\"filled_mib\":%ld,\"hold_s\":%ld}\n", done, hold);
  fflush(stdout);
  sleep((unsigned)hold);
  printf("{\"event\":\"released\",\"filled_mib\":%ld}\n", done);
  fflush(stdout);
  return 0;
}
