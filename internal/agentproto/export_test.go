package agentproto

import "time"

// SetKeepAliveTiming shortens the host's keep-alive for a test.
func SetKeepAliveTiming(interval, timeout time.Duration) (restore func()) {
	i, t := keepAliveInterval, keepAliveTimeout
	keepAliveInterval, keepAliveTimeout = interval, timeout
	return func() { keepAliveInterval, keepAliveTimeout = i, t }
}

// SetSyncAttempts replaces the SYNC retransmit schedule for a benchmark.
func SetSyncAttempts(d []time.Duration) (restore func()) {
	old := syncAttempts
	syncAttempts = d
	return func() { syncAttempts = old }
}
