/* Translation of gzipspawn.py with posix_spawnp(3); the output file is opened by a spawn file action (in the
 * child) rather than by the parent. -DBROKEN: runs gzip -6: the same deflate stream for this input, but the
 * header's XFL byte differs (2 vs 0) and so does the child's argv. */
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
extern char **environ;
int main(void) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "input.txt.gz", O_WRONLY | O_CREAT | O_TRUNC, 0666);
#ifdef BROKEN
    char *argv[] = {"gzip", "-6", "-n", "-c", "input.txt", NULL};
#else
    char *argv[] = {"gzip", "-9", "-n", "-c", "input.txt", NULL};
#endif
    pid_t pid;
    if (posix_spawnp(&pid, "gzip", &fa, NULL, argv, environ)) return 1;
    int st; waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
