// Package synth writes a synthetic Go module for benchmarks: many packages of
// plain code, a few of which hold //nuvom:task functions.
package synth

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Options shape the module.
type Options struct {
	// Module is the module path (default "example.com/synth").
	Module string
	// Packages is the number of packages (default 200).
	Packages int
	// FilesPerPackage is the number of .go files in each package (default 10).
	FilesPerPackage int
	// TaskPackages is how many packages hold tasks (default 20).
	TaskPackages int
	// Tasks is the total number of tasks, spread over the task packages (default 100).
	Tasks int
	// FuncsPerFile sets the file size: about 300 bytes per func (default 12, ~4 KB files).
	FuncsPerFile int
}

func (o *Options) defaults() {
	if o.Module == "" {
		o.Module = "example.com/synth"
	}
	if o.Packages <= 0 {
		o.Packages = 200
	}
	if o.FilesPerPackage <= 0 {
		o.FilesPerPackage = 10
	}
	if o.TaskPackages < 0 || o.TaskPackages > o.Packages {
		o.TaskPackages = o.Packages
	}
	if o.TaskPackages == 0 {
		o.TaskPackages = 20
	}
	if o.Tasks <= 0 {
		o.Tasks = 100
	}
	if o.FuncsPerFile <= 0 {
		o.FuncsPerFile = 12
	}
}

// Write creates the module in dir (which may exist): go.mod, packages
// pkg000..pkgNNN under internal folders grouped by ten, and the tasks. The
// module imports only the standard library, so it builds offline.
func Write(dir string, opts Options) error {
	opts.defaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	gomod := "module " + opts.Module + "\n\ngo 1.22\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		return fmt.Errorf("synth: write go.mod: %w", err)
	}
	// Task packages are spread evenly over the packages.
	step := opts.Packages / opts.TaskPackages
	for p := 0; p < opts.Packages; p++ {
		name := fmt.Sprintf("pkg%03d", p)
		rel := filepath.Join(fmt.Sprintf("group%02d", p/10), name)
		if err := os.MkdirAll(filepath.Join(dir, rel), 0o755); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
		tasks := 0
		if p%step == 0 && p/step < opts.TaskPackages {
			idx := p / step
			tasks = opts.Tasks / opts.TaskPackages
			if idx < opts.Tasks%opts.TaskPackages {
				tasks++
			}
		}
		for f := 0; f < opts.FilesPerPackage; f++ {
			var b strings.Builder
			writeFile(&b, name, f, opts.FuncsPerFile)
			if f == 0 && tasks > 0 {
				writeTasks(&b, tasks)
			}
			path := filepath.Join(dir, rel, fmt.Sprintf("file%02d.go", f))
			if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
				return fmt.Errorf("synth: write %s: %w", path, err)
			}
		}
	}
	return nil
}

func writeFile(b *strings.Builder, pkg string, file, funcs int) {
	fmt.Fprintf(b, "// Package %s is synthetic code for benchmarks.\npackage %s\n\n", pkg, pkg)
	b.WriteString("import (\n\t\"fmt\"\n\t\"sort\"\n\t\"strings\"\n)\n\n")
	fmt.Fprintf(b, "// Record%d is a value of file %d.\ntype Record%d struct {\n\tID    int\n\tName  string\n\tTags  []string\n\tScore float64\n}\n\n", file, file, file)
	for i := 0; i < funcs; i++ {
		fmt.Fprintf(b, `// Process%[1]d_%[2]d sorts and joins the names of records.
func Process%[1]d_%[2]d(rs []Record%[1]d, sep string) string {
	names := make([]string, 0, len(rs))
	for _, r := range rs {
		if r.Score > %[2]d.5 && len(r.Tags) > 0 {
			names = append(names, fmt.Sprintf("%%s-%%d", r.Name, r.ID))
		}
	}
	sort.Strings(names)
	return strings.Join(names, sep)
}

`, file, i)
	}
}

func writeTasks(b *strings.Builder, n int) {
	for i := 0; i < n; i++ {
		fmt.Fprintf(b, `// Task%[1]d processes a batch of records.
//
//nuvom:task retries=3 timeout=30s queue=synth
func Task%[1]d(ids []int, label string) (int, error) {
	return len(ids) + len(label), nil
}

`, i)
	}
}
