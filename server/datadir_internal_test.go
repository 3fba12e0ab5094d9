//go:build unix

package server

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lockHelperEnv makes the test binary a process that holds a data directory's lock until it is
// killed (TestDataDirLockHelperProcess).
const lockHelperEnv = "CREDITLEDGER_TEST_LOCK_DIR"

// TestDataDirLockHelperProcess is not a test: run by TestDataDirLockGoesWithAKilledHolder as a
// child process, it takes the lock, says so, and waits to be killed.
func TestDataDirLockHelperProcess(t *testing.T) {
	dir := os.Getenv(lockHelperEnv)
	if dir == "" {
		t.Skip("helper process only")
	}
	if _, err := lockDataDir(dir); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until killed
	os.Exit(0)
}

// An operator's kill -9 leaves no stale lock: the kernel drops a flock with its holder, so the
// directory is free as soon as the killed process is gone, though the lock file still names it.
func TestDataDirLockGoesWithAKilledHolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestDataDirLockHelperProcess$")
	child.Env = append(os.Environ(), lockHelperEnv+"="+dir)
	stdin, err := child.StdinPipe()
	require.NoError(t, err)
	defer stdin.Close()
	stdout, err := child.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, child.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked", strings.TrimSpace(line))

	_, err = lockDataDir(dir)
	require.ErrorIs(t, err, ErrDataDirLocked)
	assert.Contains(t, err.Error(), fmt.Sprintf("pid %d", child.Process.Pid), "the message names the holder")

	require.NoError(t, child.Process.Kill()) // SIGKILL: no clean-up runs in the child
	_ = child.Wait()
	l, err := lockDataDir(dir)
	require.NoError(t, err, "a killed holder leaves no lock behind")
	defer l.Close()
	b, err := os.ReadFile(filepath.Join(dir, LockFileName))
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("%d\n", os.Getpid()), string(b), "the new holder's pid replaces the dead one's")
}

// A lock file left by a process that is gone (a crash, a copied data directory) is no lock: only
// a live flock is. Closing the lock frees the directory for the next process.
func TestDataDirLockIgnoresAStaleLockFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, LockFileName)
	require.NoError(t, os.WriteFile(path, []byte("4194304999\nleftover bytes of a longer file\n"), 0o640))
	l, err := lockDataDir(dir)
	require.NoError(t, err)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("%d\n", os.Getpid()), string(b))

	_, err = lockDataDir(dir)
	require.ErrorIs(t, err, ErrDataDirLocked, "held: a second lock in this process fails too")
	require.NoError(t, l.Close())
	require.NoError(t, l.Close(), "closing twice is harmless")
	l2, err := lockDataDir(dir)
	require.NoError(t, err, "released on Close")
	require.NoError(t, l2.Close())
}
