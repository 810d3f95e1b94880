// Package scripts holds the repository's build and check scripts — the
// GPU backend build (gpu-backend.sh, run by `make`) and `make gpu-check`
// (gpucheck/) — and the tests that run them. It has no Go API.
package scripts
