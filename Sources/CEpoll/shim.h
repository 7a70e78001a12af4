// epoll(7) for the benchmarks' load generators: Swift's Glibc module leaves sys/epoll.h out.
#include <sys/epoll.h>
