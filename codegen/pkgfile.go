package codegen

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/dave/jennifer/jen"
	"github.com/nuvom/nuvom/manifest"
)

// param is one task parameter as the generated code names and codes it.
type param struct {
	name string
	typ  *manifest.Type
	c    codec
}

// idents are the generated code's own identifiers for one task, chosen so
// that none shadows a parameter or anything the generated bodies refer to.
type idents struct {
	ctx, client, opts, h, w, r, args, res, err, when, parent string
}

// plan is everything needed to render one task's code.
type plan struct {
	t          *manifest.Task
	handleVar  string // ResizeTask
	handleType string // ResizeTaskHandle
	encode     string // encodeResizeArgs
	encodeRest string // encodeResizeRest: every argument but the first (a workflow child's own)
	invoke     string // invokeResize
	params     []param
	id         idents
}

// handleVar names the typed handle of the task function fn: <Fn>Task, exported
// even for an unexported function, because the registry package refers to it.
func handleVar(fn string) string { return upperFirst(fn) + "Task" }

func newPlan(t *manifest.Task) *plan {
	return &plan{
		t:          t,
		handleVar:  handleVar(t.Func),
		handleType: handleVar(t.Func) + "Handle",
		encode:     "encode" + upperFirst(t.Func) + "Args",
		encodeRest: "encode" + upperFirst(t.Func) + "Rest",
		invoke:     "invoke" + upperFirst(t.Func),
	}
}

func (p *plan) hooks() []string {
	var hs []string
	for _, h := range []string{p.t.Options.Before, p.t.Options.After, p.t.Options.OnError} {
		if h != "" {
			hs = append(hs, h)
		}
	}
	return hs
}

// pkgFile is the stub file of one package.
type pkgFile struct {
	pkg   Package
	plans []*plan
	// owner says who declares each package-level name the file declares or refers to.
	owner map[string]string
}

// newPkgFile plans the stub file of package pkg holding tasks (sorted by
// name), reporting generated names that would collide.
func newPkgFile(pkg Package, tasks []*manifest.Task) (*pkgFile, error) {
	var c collector
	plans := make([]*plan, len(tasks))
	for i, t := range tasks {
		plans[i] = newPlan(t)
	}

	// Package-level names the file declares or refers to: generated names must
	// not collide with each other or with task functions, hooks and local types.
	owner := map[string]string{}
	claim := func(name, task, what string) {
		if prev, ok := owner[name]; ok {
			c.task(task, "%s %s collides with %s", what, name, prev)
			return
		}
		owner[name] = what + " of " + task
	}
	for _, p := range plans {
		claim(p.t.Func, p.t.Name, "task function")
	}
	for _, p := range plans {
		for _, h := range p.hooks() {
			if _, ok := owner[h]; !ok {
				owner[h] = "hook function of " + p.t.Name
			}
		}
		for _, t := range p.types() {
			for _, n := range localTypeNames(t, pkg.ImportPath, nil) {
				if _, ok := owner[n]; !ok {
					owner[n] = "type used by " + p.t.Name
				}
			}
		}
	}
	for _, p := range plans {
		claim(p.handleVar, p.t.Name, "generated handle variable")
		claim(p.handleType, p.t.Name, "generated handle type")
		claim(p.encode, p.t.Name, "generated encoder")
		if len(p.t.Params) > 0 {
			claim(p.encodeRest, p.t.Name, "generated encoder")
		}
		claim(p.invoke, p.t.Name, "generated invoker")
	}
	return &pkgFile{pkg: pkg, plans: plans, owner: owner}, c.err()
}

// render renders the stub file; the tasks must have passed checkTask.
func (pf *pkgFile) render() ([]byte, error) {
	pkg, plans, owner := pf.pkg, pf.plans, pf.owner

	// Import aliases: fixed ones first, then every other package the types
	// name, by path; none may shadow a package-level name.
	pathSet := map[string]bool{}
	for _, p := range plans {
		for _, t := range p.types() {
			typePaths(t, pathSet)
		}
	}
	for _, fixed := range []string{pkg.ImportPath, "context", "time", RuntimePath, ImplPath} {
		delete(pathSet, fixed)
	}
	paths := []string{"context", "time", RuntimePath, ImplPath}
	others := make([]string, 0, len(pathSet))
	for p := range pathSet {
		others = append(others, p)
	}
	sort.Strings(others)
	paths = append(paths, others...)
	localNames := make(map[string]bool, len(owner))
	for name := range owner {
		localNames[name] = true
	}
	aliases := assignAliases(paths, map[string]string{RuntimePath: "nuvom", ImplPath: "nuvomimpl"}, localNames)
	for _, p := range plans {
		p.name(pkg.ImportPath, aliases)
	}

	f := jen.NewFilePathName(pkg.ImportPath, pkg.Name)
	f.HeaderComment(Header)
	registerAliases(f, aliases, map[string]string{"context": "context", "time": "time", RuntimePath: "nuvom", ImplPath: "nuvomimpl"})
	f.Comment("This code needs version " + strconv.Itoa(SupportVersion) + " of the nuvom support package: if the next line does not")
	f.Comment("compile, the github.com/nuvom/nuvom module is older than the nuvomgen that")
	f.Comment("generated this file; upgrade it (go get github.com/nuvom/nuvom@latest).")
	f.Const().Id("_").Op("=").Qual(ImplPath, "SupportPackageIsVersion"+strconv.Itoa(SupportVersion))
	f.Line()
	f.Add(jen.Comment("Compile-time guards: these break the build when a task function's signature").Line().
		Comment("drifts from the generated code. Run go generate to update.").Line().
		Var().DefsFunc(func(g *jen.Group) {
		for _, p := range plans {
			g.Id("_").Add(p.funcType()).Op("=").Id(p.t.Func)
		}
	}))
	for _, p := range plans {
		p.render(f)
	}
	src, err := render(f)
	if err != nil {
		return nil, fmt.Errorf("codegen: render %s: %w", pkg.ImportPath, err)
	}
	return src, nil
}

// types returns the task's param types and its result type, if any.
func (p *plan) types() []*manifest.Type {
	types := make([]*manifest.Type, 0, len(p.t.Params)+1)
	for i := range p.t.Params {
		types = append(types, &p.t.Params[i].Type)
	}
	if p.t.Result != nil {
		types = append(types, p.t.Result)
	}
	return types
}

// localTypeNames appends the names of t's named types that live in package
// local, as far as t's rendering names them.
func localTypeNames(t *manifest.Type, local string, out []string) []string {
	if pkg, name, ok := named(t); ok {
		if pkg == local {
			out = append(out, name)
		}
		return out
	}
	if t.Key != nil {
		out = localTypeNames(t.Key, local, out)
	}
	if t.Elem != nil {
		out = localTypeNames(t.Elem, local, out)
	}
	for i := range t.Fields {
		out = localTypeNames(&t.Fields[i].Type, local, out)
	}
	return out
}

// name picks the parameter names and the generated code's own identifiers.
func (p *plan) name(local string, aliases map[string]string) {
	reserved := map[string]bool{"nil": true, p.t.Func: true, p.encode: true, p.encodeRest: true, p.invoke: true}
	for _, a := range aliases {
		reserved[a] = true
	}
	for _, h := range p.hooks() {
		reserved[h] = true
	}
	for _, t := range p.types() {
		typeIdents(t, local, aliases, reserved)
		if c := codecOf(t); c.wireIdent != "" {
			reserved[c.wireIdent] = true
		}
	}
	used := reserved
	p.params = make([]param, len(p.t.Params))
	// Named params first, so that a blank param's made-up name (argN) never
	// takes a real param's name.
	for _, blank := range []bool{false, true} {
		for i := range p.t.Params {
			mp := &p.t.Params[i]
			n := mp.Name
			if isBlank := n == "" || n == "_"; isBlank != blank {
				continue
			} else if isBlank {
				n = "arg" + strconv.Itoa(i)
			}
			n = freeName(n, used)
			used[n] = true
			p.params[i] = param{name: n, typ: &mp.Type, c: codecOf(&mp.Type)}
		}
	}
	pick := func(base string) string {
		n := freeName(base, used)
		used[n] = true
		return n
	}
	p.id = idents{ctx: pick("ctx"), client: pick("client"), opts: pick("opts"), h: pick("h"),
		w: pick("w"), r: pick("r"), args: pick("args"), res: pick("res"), err: pick("err"), when: pick("when"),
		parent: pick("parent")}
}

// funcType is the task function's type, for the compile-time guard.
func (p *plan) funcType() jen.Code {
	var ps []jen.Code
	if p.t.Context {
		ps = append(ps, jen.Qual("context", "Context"))
	}
	for _, pa := range p.params {
		ps = append(ps, goType(pa.typ))
	}
	fn := jen.Func().Params(ps...)
	if p.t.Result == nil {
		return fn.Error()
	}
	return fn.Params(goType(p.t.Result), jen.Error())
}

// resultType is the type argument of the task's Pending handle.
func (p *plan) resultType() jen.Code {
	if p.t.Result == nil {
		return jen.Struct()
	}
	return goType(p.t.Result)
}

var multiline = jen.Options{Open: "{", Close: "}", Separator: ",", Multi: true}

// field renders "Key: value" in a composite literal.
func field(key string, value jen.Code) jen.Code { return jen.Id(key).Op(":").Add(value) }

// render adds the task's handle, methods, encoder and invoker to f.
func (p *plan) render(f *jen.File) {
	t, id := p.t, p.id
	name := strconv.Quote(t.Name)

	f.Commentf("%s is the typed handle of task %s.", p.handleVar, name)
	f.Var().Id(p.handleVar).Id(p.handleType)

	doc := fmt.Sprintf("%s enqueues task %s", p.handleType, name)
	if s := summary(t.Doc); s != "" {
		doc += ": " + s
	} else {
		doc += "."
	}
	f.Comment(doc)
	f.Type().Id(p.handleType).Struct()

	f.Commentf("Name returns the task's name, %s.", name)
	f.Func().Params(jen.Id(p.handleType)).Id("Name").Params().String().Block(jen.Return(jen.Lit(t.Name)))

	f.Comment("Spec returns the task's name, signature hash and default options.")
	f.Func().Params(jen.Id(p.handleType)).Id("Spec").Params().Qual(RuntimePath, "TaskSpec").Block(
		jen.Return(jen.Qual(RuntimePath, "TaskSpec").Custom(multiline,
			field("Name", jen.Lit(t.Name)),
			field("Signature", jen.Lit(p.signature())),
			field("Options", jen.Qual(RuntimePath, "TaskOptions").Custom(multiline, p.options()...)),
		)))

	// Delay.
	delayParams := []jen.Code{jen.Id(id.ctx).Qual("context", "Context"), jen.Id(id.client).Op("*").Qual(RuntimePath, "Client")}
	callArgs := make([]jen.Code, len(p.params))
	for i, pa := range p.params {
		delayParams = append(delayParams, jen.Id(pa.name).Add(goType(pa.typ)))
		callArgs[i] = jen.Id(pa.name)
	}
	delayParams = append(delayParams, jen.Id(id.opts).Op("...").Qual(RuntimePath, "EnqueueOption"))
	ifErr := jen.If(jen.Id(id.err).Op("!=").Nil()).Block(jen.Return(jen.Nil(), jen.Id(id.err)))
	if t.Result != nil && !t.Options.StoreResult {
		f.Commentf("Delay enqueues %s with typed arguments. Its result is not stored (store_result=false):", t.Name)
		f.Comment("Wait on the returned handle waits for the job and gives the zero value.")
	} else {
		f.Commentf("Delay enqueues %s with typed arguments; Wait on the returned handle gives its result.", t.Name)
	}
	f.Func().Params(jen.Id(id.h).Id(p.handleType)).Id("Delay").Params(delayParams...).
		Params(jen.Op("*").Qual(RuntimePath, "Pending").Types(p.resultType()), jen.Error()).Block(
		jen.List(jen.Id(id.args), jen.Id(id.err)).Op(":=").Id(p.encode).Call(callArgs...),
		ifErr,
		jen.List(jen.Id(id.res), jen.Id(id.err)).Op(":=").Id(id.client).Dot("Enqueue").Call(
			jen.Id(id.ctx), jen.Id(id.h).Dot("Spec").Call(), jen.Id(id.args), jen.Id(id.opts).Op("...")),
		ifErr,
		jen.Return(jen.Qual(RuntimePath, "PendingOf").Types(p.resultType()).Call(jen.Id(id.client), jen.Id(id.res)), jen.Nil()),
	)

	// Request.
	reqParams := make([]jen.Code, 0, len(p.params)+1)
	for _, pa := range p.params {
		reqParams = append(reqParams, jen.Id(pa.name).Add(goType(pa.typ)))
	}
	reqParams = append(reqParams, jen.Id(id.opts).Op("...").Qual(RuntimePath, "EnqueueOption"))
	f.Commentf("Request returns a job of %s with typed arguments, for client.EnqueueBatch:", t.Name)
	f.Comment("many jobs in one call and one transaction. Wait on one with nuvom.PendingOf.")
	f.Func().Params(jen.Id(id.h).Id(p.handleType)).Id("Request").Params(reqParams...).
		Params(jen.Qual(RuntimePath, "Request")).Block(
		jen.List(jen.Id(id.args), jen.Id(id.err)).Op(":=").Id(p.encode).Call(callArgs...),
		jen.Return(jen.Qual(RuntimePath, "Request").Custom(multiline,
			field("Spec", jen.Id(id.h).Dot("Spec").Call()),
			field("Args", jen.Id(id.args)),
			field("Options", jen.Id(id.opts)),
			field("Err", jen.Id(id.err)),
		)),
	)

	// Schedule.
	schedParams := []jen.Code{jen.Id(id.ctx).Qual("context", "Context"), jen.Id(id.client).Op("*").Qual(RuntimePath, "Client"),
		jen.Id(id.when).Qual(RuntimePath, "ScheduleSpec")}
	for _, pa := range p.params {
		schedParams = append(schedParams, jen.Id(pa.name).Add(goType(pa.typ)))
	}
	f.Commentf("Schedule stores a schedule that enqueues %s with these arguments at each fire time of %s", t.Name, id.when)
	f.Comment("(nuvom.Cron, nuvom.Every, nuvom.OnceAt, nuvom.OnceIn); it returns the schedule's id.")
	f.Func().Params(jen.Id(id.h).Id(p.handleType)).Id("Schedule").Params(schedParams...).
		Params(jen.String(), jen.Error()).Block(
		jen.List(jen.Id(id.args), jen.Id(id.err)).Op(":=").Id(p.encode).Call(callArgs...),
		jen.If(jen.Id(id.err).Op("!=").Nil()).Block(jen.Return(jen.Lit(""), jen.Id(id.err))),
		jen.Return(jen.Id(id.client).Dot("Schedule").Call(jen.Id(id.ctx), jen.Id(id.h).Dot("Spec").Call(), jen.Id(id.args), jen.Id(id.when))),
	)

	p.renderSteps(f, reqParams, callArgs)

	// Definition.
	def := []jen.Code{
		field("TaskSpec", jen.Id(id.h).Dot("Spec").Call()),
		field("Invoke", jen.Id(p.invoke)),
	}
	for _, h := range []struct{ key, fn string }{{"Before", t.Options.Before}, {"After", t.Options.After}, {"OnError", t.Options.OnError}} {
		if h.fn != "" {
			def = append(def, field(h.key, jen.Id(h.fn)))
		}
	}
	f.Comment("Definition returns the task's registration for a worker.")
	f.Func().Params(jen.Id(id.h).Id(p.handleType)).Id("Definition").Params().Qual(RuntimePath, "TaskDef").Block(
		jen.Return(jen.Qual(RuntimePath, "TaskDef").Custom(multiline, def...)))

	// Encoders.
	f.Commentf("%s encodes the arguments of task %s in wire order.", p.encode, name)
	p.renderEncoder(f, p.encode, p.params)
	if len(p.params) > 0 {
		f.Commentf("%s encodes the arguments of task %s but the first, which a workflow step", p.encodeRest, name)
		f.Comment("receives from its parents, in wire order.")
		p.renderEncoder(f, p.encodeRest, p.params[1:])
	}

	// Invoker.
	ctxName := id.ctx
	if !t.Context {
		ctxName = "_"
	}
	body := []jen.Code{jen.Id(id.r).Op(":=").Qual(ImplPath, "NewArgReader").Call(jen.Lit(t.Name), jen.Id(id.args), jen.Lit(len(p.params)))}
	var invokeArgs []jen.Code
	if t.Context {
		invokeArgs = append(invokeArgs, jen.Id(id.ctx))
	}
	for _, pa := range p.params {
		read := jen.Id(id.r).Dot(pa.c.method).Call()
		switch {
		case pa.c.method == "Value":
			body = append(body,
				jen.Var().Id(pa.name).Add(goType(pa.typ)),
				jen.Id(id.r).Dot("Value").Call(jen.Op("&").Id(pa.name)))
		case pa.c.convert:
			body = append(body, jen.Id(pa.name).Op(":=").Add(goType(pa.typ)).Call(read))
		default:
			body = append(body, jen.Id(pa.name).Op(":=").Add(read))
		}
		invokeArgs = append(invokeArgs, jen.Id(pa.name))
	}
	body = append(body, jen.If(jen.Id(id.err).Op(":=").Id(id.r).Dot("Err").Call(), jen.Id(id.err).Op("!=").Nil()).Block(
		jen.Return(jen.Nil(), jen.Id(id.err))))
	if t.Result == nil {
		body = append(body,
			jen.If(jen.Id(id.err).Op(":=").Id(t.Func).Call(invokeArgs...), jen.Id(id.err).Op("!=").Nil()).Block(
				jen.Return(jen.Nil(), jen.Id(id.err))),
			jen.Return(jen.Nil(), jen.Nil()))
	} else {
		body = append(body,
			jen.List(jen.Id(id.res), jen.Id(id.err)).Op(":=").Id(t.Func).Call(invokeArgs...),
			ifErr,
			jen.Return(jen.Qual(ImplPath, "EncodeResult").Call(jen.Id(id.res))))
	}
	f.Commentf("%s decodes the arguments of task %s, calls %s and encodes its result.", p.invoke, name, t.Func)
	f.Func().Id(p.invoke).Params(jen.Id(ctxName).Qual("context", "Context"), jen.Id(id.args).Index().Byte()).
		Params(jen.Index().Byte(), jen.Error()).Block(body...)
}

// signature is the task's signature hash, computed when the manifest has none.
func (p *plan) signature() string {
	if p.t.Signature != "" {
		return p.t.Signature
	}
	return p.t.ComputeSignature()
}

// options renders the fields of the task's runtime.TaskOptions in declaration order.
func (p *plan) options() []jen.Code {
	o := p.t.Options
	tags := jen.Nil()
	if len(o.Tags) > 0 {
		lits := make([]jen.Code, len(o.Tags))
		for i, tag := range o.Tags {
			lits[i] = jen.Lit(tag)
		}
		tags = jen.Index().String().Values(lits...)
	}
	fields := []jen.Code{
		field("Retries", jen.Lit(o.Retries)),
		field("RetryDelay", durationCode(o.RetryDelay.Std())),
		field("Backoff", jen.Qual(RuntimePath, backoffs[o.Backoff])),
		field("MaxRetryDelay", durationCode(o.MaxRetryDelay.Std())),
		field("Timeout", durationCode(o.Timeout.Std())),
		field("TimeoutPolicy", jen.Qual(RuntimePath, timeoutPolicies[o.TimeoutPolicy])),
		field("Queue", jen.Lit(o.Queue)),
		field("Priority", jen.Lit(o.Priority)),
		field("Tags", tags),
		field("StoreResult", jen.Lit(o.StoreResult)),
		field("Version", jen.Lit(o.Version)),
	}
	// The declared schedule, only when there is one (older output stays identical).
	if o.Cron != "" {
		fields = append(fields, field("Cron", jen.Lit(o.Cron)))
		if o.TZ != "" {
			fields = append(fields, field("Zone", jen.Lit(o.TZ)))
		}
	}
	if o.Every > 0 {
		fields = append(fields, field("Every", durationCode(o.Every.Std())))
	}
	// Flow control, only when declared (older output stays identical).
	if o.MaxConcurrency > 0 {
		fields = append(fields, field("MaxConcurrency", jen.Lit(o.MaxConcurrency)))
	}
	if n, per, err := manifest.ParseRate(o.Rate); o.Rate != "" && err == nil {
		fields = append(fields, field("Rate", jen.Qual(RuntimePath, "Rate").Values(
			field("N", jen.Lit(n)), field("Per", durationCode(per)))))
	}
	return fields
}

// renderEncoder renders the function fn encoding params as an argument list.
func (p *plan) renderEncoder(f *jen.File, fn string, params []param) {
	id := p.id
	encParams := make([]jen.Code, len(params))
	encBody := []jen.Code{jen.Id(id.w).Op(":=").Qual(ImplPath, "NewArgWriter").Call(jen.Lit(len(params)))}
	for i, pa := range params {
		encParams[i] = jen.Id(pa.name).Add(goType(pa.typ))
		var v jen.Code = jen.Id(pa.name)
		if pa.c.convert {
			v = jen.Add(pa.c.wire).Call(jen.Id(pa.name))
		}
		encBody = append(encBody, jen.Id(id.w).Dot(pa.c.method).Call(v))
	}
	encBody = append(encBody, jen.Return(jen.Id(id.w).Dot("Finish").Call()))
	f.Func().Id(fn).Params(encParams...).Params(jen.Index().Byte(), jen.Error()).Block(encBody...)
}

// renderSteps adds the workflow methods: Step (all arguments given) and,
// for a task with parameters, From (the first argument comes from a parent
// step, or a group of them, whose result type the compiler checks).
func (p *plan) renderSteps(f *jen.File, params, callArgs []jen.Code) {
	t, id := p.t, p.id
	step := jen.Qual(RuntimePath, "Step").Types(p.resultType())
	f.Commentf("Step returns a workflow step of %s with typed arguments (see nuvom.Workflow); it", t.Name)
	f.Comment("runs first unless ordered with After.")
	f.Func().Params(jen.Id(id.h).Id(p.handleType)).Id("Step").Params(params...).Add(step).Block(
		jen.List(jen.Id(id.args), jen.Id(id.err)).Op(":=").Id(p.encode).Call(callArgs...),
		jen.Return(jen.Qual(RuntimePath, "NewStep").Types(p.resultType()).Call(
			jen.Id(id.h).Dot("Spec").Call(), jen.Id(id.args), jen.Id(id.err), jen.Id(id.opts))),
	)
	if len(p.params) == 0 {
		return
	}
	first := p.params[0]
	fromParams := []jen.Code{jen.Id(id.parent).Qual(RuntimePath, "Source").Types(goType(first.typ))}
	fromParams = append(fromParams, params[1:]...)
	f.Commentf("From returns a workflow step of %s whose first argument, %s, is the result of", t.Name, first.name)
	f.Commentf("%s (a nuvom.Step, or a nuvom.Group when %s is a slice): it runs when %s has", id.parent, first.name, id.parent)
	f.Comment("succeeded. A parent of another result type does not compile.")
	f.Func().Params(jen.Id(id.h).Id(p.handleType)).Id("From").Params(fromParams...).Add(step).Block(
		jen.List(jen.Id(id.args), jen.Id(id.err)).Op(":=").Id(p.encodeRest).Call(callArgs[1:]...),
		jen.Return(jen.Qual(RuntimePath, "StepFrom").Types(p.resultType(), goType(first.typ)).Call(
			jen.Id(id.parent), jen.Id(id.h).Dot("Spec").Call(), jen.Id(id.args), jen.Id(id.err), jen.Id(id.opts))),
	)
}
