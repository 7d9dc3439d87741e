/* The bundled example enclave application: prints its arguments and GREETING, then exits
 * (with the status given as --exit=N, for tests). Built statically, it needs nothing else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
  const char *greeting = getenv("GREETING");
  int status = 0;
  printf("hello from the enclave: greeting=%s uid=%d argc=%d", greeting ? greeting : "(unset)",
         (int)getuid(), argc);
  for (int i = 0; i < argc; i++) {
    printf(" argv[%d]=%s", i, argv[i]);
    if (strncmp(argv[i], "--exit=", 7) == 0)
      status = atoi(argv[i] + 7);
  }
  printf("\n");
  return status;
}
