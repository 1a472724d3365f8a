// Package asynqbench measures Nuvom's Redis backend side by side with asynq
// (github.com/hibiken/asynq) on the same redis-server in the same run. It is
// a separate Go module so that asynq never enters Nuvom's own go.mod:
//
//	cd runtime/redis/asynqbench && go test -run '^$' -bench . -benchtime 1x
package asynqbench
