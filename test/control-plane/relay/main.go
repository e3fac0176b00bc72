// Command relay lets host processes (tests, kubectl) reach a server inside a network namespace the
// harness created: it listens on a host address and, for each connection, dials the target from a
// thread that has joined the namespace, then copies bytes both ways.
//
//	relay -listen 127.0.0.1:PORT -netns /proc/PID/ns/net -connect 127.0.0.1:443
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"os"
	"runtime"
	"syscall"
)

// setns(2) on linux/amd64 (the syscall package has no name for it).
const sysSetns = 308

type dial struct {
	reply chan net.Conn
	err   chan error
}

// dialer runs on one OS thread locked into the namespace for the life of the process.
func dialer(nsPath, target string, reqs <-chan dial) {
	runtime.LockOSThread() // never unlocked: the thread dies with the goroutine, not back to the pool
	f, err := os.Open(nsPath)
	if err != nil {
		log.Fatalf("open %s: %v", nsPath, err)
	}
	if _, _, e := syscall.RawSyscall(sysSetns, f.Fd(), syscall.CLONE_NEWNET, 0); e != 0 {
		log.Fatalf("setns %s: %v", nsPath, e)
	}
	f.Close()
	for r := range reqs {
		c, err := net.Dial("tcp", target)
		if err != nil {
			r.err <- err
			continue
		}
		r.reply <- c
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "host address to listen on")
	nsPath := flag.String("netns", "", "network namespace file (/proc/PID/ns/net)")
	target := flag.String("connect", "", "address to dial inside the namespace")
	flag.Parse()
	reqs := make(chan dial)
	go dialer(*nsPath, *target, reqs)
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen %s: %v", *listen, err)
	}
	log.Printf("relaying %s to %s in %s", l.Addr(), *target, *nsPath)
	for {
		in, err := l.Accept()
		if err != nil {
			log.Fatalf("accept: %v", err)
		}
		go func() {
			r := dial{reply: make(chan net.Conn, 1), err: make(chan error, 1)}
			reqs <- r
			var out net.Conn
			select {
			case out = <-r.reply:
			case err := <-r.err:
				log.Printf("dial %s: %v", *target, err)
				in.Close()
				return
			}
			done := make(chan struct{}, 2)
			pipe := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go pipe(out, in)
			go pipe(in, out)
			<-done
			<-done
			in.Close()
			out.Close()
		}()
	}
}
