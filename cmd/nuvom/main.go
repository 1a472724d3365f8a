// Command nuvom is Nuvom's command line: it runs workers, lists the module's
// tasks from the manifest alone, enqueues by name, and inspects jobs, history,
// queues and schedules. Run "nuvom help" for the commands.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}
