package codegen

import "github.com/nuvom/nuvom/manifest"

// StubNames returns the top-level names the generated file of a package
// declares for the task function fn (for Resize: ResizeTask, ResizeTaskHandle,
// encodeResizeArgs, invokeResize). The analyzer uses them to tell code that
// calls a not-yet-generated stub from code that does not compile.
func StubNames(fn string) []string {
	p := newPlan(&manifest.Task{Func: fn})
	return []string{p.handleVar, p.handleType, p.encode, p.invoke}
}
