// Package dist hands a run's candidates out as jobs on a NATS JetStream
// server and collects their results. There is one code path: a run always
// has a server — embedded in the coordinator's process by default, with no
// network listener — and the coordinator's own worker pool consumes jobs
// from it exactly as a worker on another machine does (`evomerge-tui worker
// --join`). docs/distributed.md describes the subjects, streams, consumers,
// message schema and delivery guarantees; the decisions the code relies on:
//
//   - Jobs are recipes, not models. A job carries the candidate's
//     eval.CandidateRequest unchanged except that its texts travel by
//     sha256 (their contents are in the run's object store once). Sources
//     are announced once per run in RunInfo, pinned by sha256 and size;
//     a worker finds each at the same path (checked against the hash), in
//     its own cache, or in the run's object store. Merged weights never
//     cross the network.
//   - The jobs stream is a work queue with one durable pull consumer that
//     every host shares: explicit ack, AckWait with InProgress heartbeats
//     every third of it while a job runs, one job fetched per free slot
//     (no prefetch). A job is handed out at most MaxDeliver+1 times: the
//     extra delivery is not run; the host that receives it records the job
//     failed ("handed out N times without a result"), so a job that kills
//     every host it reaches cannot stall the run. A crash of an evaluation
//     worker process inside a host (a llama.cpp abort) is the candidate's
//     outcome, as on one machine: the pool replaces the worker.
//   - A host publishes the result with Nats-Msg-Id = the job key before it
//     acks the job, so a job redelivered after a late ack yields a second
//     result that the results stream drops as a duplicate. The results
//     stream is a work queue too; the coordinator acks a result only after
//     the caller says it is recorded (history.jsonl), so a coordinator that
//     dies loses nothing: the resumed run finds the result still pending.
//   - Versions: a host takes jobs only from a run whose protocol, evomerge
//     and llama.cpp versions equal its own; otherwise, or when it cannot
//     resolve a source, it says why in one line, registers as refused (the
//     coordinator prints the same line) and takes no jobs.
package dist
