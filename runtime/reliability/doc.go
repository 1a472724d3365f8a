// Package reliability holds Nuvom's reliability tests with real processes;
// it has no code of its own besides this comment.
//
// The test binary re-executes itself as a worker process (see TestMain): a
// real runtime.Worker over a real SQLite database or file-backend folder, with
// hand-written task definitions that encode and decode their arguments the
// way generated code does. Every execution of a task appends one line
// "<job id> <pid>" to an executions log with a single append write, so the
// log survives kill -9 and tells how often each job ran and in which process.
//
// The tests:
//
//   - Crash: kill -9 a worker mid-run on a SQLite queue of 5,000 jobs, start
//     another; every job succeeds, none is lost, only jobs that were running
//     at the kill run twice, and none runs more than twice.
//   - Contention: 4 worker processes on one database and 20,000 jobs; every
//     job runs exactly once.
//   - Corruption: an undecodable SQLite row or queue file is quarantined with
//     a log line naming it, and every other job succeeds.
//   - Shutdown (Unix): SIGTERM lets running jobs finish within the grace
//     period, or hands them back without spending an attempt when it ends.
//   - External write lock: another process holds the SQLite write lock until
//     the worker's leases have ended; once it lets go, every job the worker
//     held succeeds at its first attempt, none recorded as lost.
//   - Replaced database: the SQLite file is deleted and created anew while a
//     worker runs; the worker says so instead of going on with the deleted
//     file, and a fresh worker runs the new file's jobs.
package reliability
