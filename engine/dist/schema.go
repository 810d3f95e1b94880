package dist

import (
	"crypto/sha256"
	"encoding/hex"
	"runtime/debug"
	"strings"
	"time"

	"github.com/evomerge/evomerge/engine/eval"
)

// Protocol is the version of the messages below; hosts and coordinators
// of different protocols do not work together.
const Protocol = 1

// Names of a run's subjects, streams and buckets. Every name carries the
// run id, so runs sharing one server (an external cluster) stay apart.
type names struct{ run string }

func (n names) jobsStream() string    { return "EVOMERGE_" + n.run + "_JOBS" }
func (n names) resultsStream() string { return "EVOMERGE_" + n.run + "_RESULTS" }
func (n names) jobSubject() string    { return "evomerge." + n.run + ".jobs" }
func (n names) resultSubject(key string) string {
	return "evomerge." + n.run + ".results." + key
}
func (n names) progressSubject(key string) string {
	return "evomerge." + n.run + ".progress." + key
}
func (n names) progressAll() string   { return "evomerge." + n.run + ".progress.*" }
func (n names) workersBucket() string { return "evomerge-" + n.run + "-workers" }
func (n names) objectBucket() string  { return "evomerge-" + n.run + "-files" }

// runsBucket lists the runs a server holds (key: run id, value: RunInfo),
// for workers that join without naming one.
const runsBucket = "evomerge-runs"

// hostsConsumer is the durable consumer every host pulls jobs from;
// resultsConsumer is the coordinator's.
const (
	hostsConsumer   = "hosts"
	resultsConsumer = "coordinator"
)

// RunInfo announces a run to the hosts: what they must be to take its
// jobs, the sources to prepare, and the delivery settings.
type RunInfo struct {
	Run      string `json:"run"`
	Protocol int    `json:"protocol"`
	Evomerge string `json:"evomerge"` // evomerge's version
	Llama    string `json:"llama"`    // llama.cpp's (the binding module's version)
	// Prepare is the request each host's pool is prepared with; its
	// sources are pinned by SHA256 and Size when the run is remote.
	Prepare eval.PrepareRequest `json:"prepare"`
	// AckWait is how long a job stays with a host that stopped reporting.
	AckWait time.Duration `json:"ack_wait"`
	// MaxDeliver is how many times a job is run before it fails.
	MaxDeliver int       `json:"max_deliver"`
	Started    time.Time `json:"started"`
}

// TextRef names a text of a job by the sha256 of its content; the
// content is in the run's object store under textObject(sha).
type TextRef struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

// Job is one candidate to evaluate.
type Job struct {
	Run string `json:"run"`
	// Key identifies the job (the candidate's recipe key); it is the
	// Nats-Msg-Id of its result, and with the coordinator's session that
	// of the job.
	Key string `json:"key"`
	ID  string `json:"id"` // the candidate's id, for logs ("g3-c07")
	// Model, when set, names a source to score as it is (a recipe that is
	// one source model); Request.Recipe is then ignored.
	Model string `json:"model,omitempty"`
	// Request is the candidate as the worker protocol has it, Texts
	// replaced by TextRefs.
	Request  eval.CandidateRequest `json:"request"`
	Texts    []TextRef             `json:"texts,omitempty"`
	Protocol int                   `json:"protocol"`
	Evomerge string                `json:"evomerge"`
	Llama    string                `json:"llama"`
}

// Result is a job's outcome, published by the host that ran it.
type Result struct {
	Key    string              `json:"key"`
	Worker string              `json:"worker"` // host name
	Reply  eval.CandidateReply `json:"reply"`
	// Err is set when the job failed; Kind classifies it (eval.KindLoad,
	// eval.KindInput, eval.KindInternal, or KindCrash / KindUndelivered).
	Err        string  `json:"error,omitempty"`
	Kind       string  `json:"kind,omitempty"`
	Attempts   int     `json:"attempts,omitempty"` // KindStart: worker starts that failed
	Deliveries int     `json:"deliveries"`         // times the job was handed out
	Seconds    float64 `json:"seconds"`            // on the host, from fetch to result
}

// Failure kinds of a Result beyond the worker protocol's.
const (
	KindCrash       = "crash"       // the job crashed the evaluation worker process
	KindUndelivered = "undelivered" // handed out MaxDeliver times, no host finished it
	// KindStart: the coordinator's own workers cannot start (eval.StartError);
	// the run stops. The job itself is handed back.
	KindStart = "start"
)

// Progress is a running job's progress, published on core NATS (not
// stored) and forwarded to the caller of Submit.
type Progress struct {
	Stage string `json:"stage"`
	Done  int    `json:"done"`
	Total int    `json:"total"`
}

// WorkerInfo is a host's entry in the run's workers bucket, renewed every
// heartbeat; an entry older than the bucket's TTL is gone.
type WorkerInfo struct {
	Name     string    `json:"name"`
	Host     string    `json:"host"`
	Device   string    `json:"device"` // "CPU", or the GPUs the workers report
	VRAM     int64     `json:"vram,omitempty"`
	Slots    int       `json:"slots"`
	Busy     int       `json:"busy"`
	Done     int       `json:"done"`
	State    string    `json:"state"` // "ready", or "refused: <reason>"
	Local    bool      `json:"local"` // the coordinator's own pool
	Evomerge string    `json:"evomerge"`
	Llama    string    `json:"llama"`
	Seen     time.Time `json:"seen"`
}

// Refused reports whether the host declined the run.
func (w WorkerInfo) Refused() bool { return strings.HasPrefix(w.State, "refused") }

// Versions are this binary's evomerge and llama.cpp versions, from its
// build information: the main module's version and VCS revision, and the
// version of the module that carries llama.cpp.
func Versions() (evomerge, llama string) {
	evomerge, llama = "unknown", "unknown"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	evomerge = bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			evomerge += "+" + s.Value
		}
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/ollama/ollama" {
			llama = d.Version
			if d.Replace != nil {
				llama = d.Replace.Version
			}
		}
	}
	return
}

func textObject(sha string) string   { return "text-" + sha }
func sourceObject(sha string) string { return "gguf-" + sha }

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
