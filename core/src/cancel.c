/* SIGINT/SIGTERM: set a flag stages poll; a second signal ends the process at once. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static volatile sig_atomic_t cancel_flag;

static void on_signal(int sig)
{
  (void)sig;
  if (cancel_flag)
    _exit(130);
  cancel_flag = 1;
}

void kiln_cancel_install_handlers(void)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

int kiln_cancelled(void)
{
  return cancel_flag != 0;
}

void kiln_cancel_reset(void)
{
  cancel_flag = 0;
}
