// Command gogoka drives the real Go Goka library (lovoo/goka with IBM/sarama) for pygoka's
// compatibility tests. Every subcommand prints one JSON document on stdout; Goka's own logs go
// to stderr. Keys and values are read as JSON from stdin so that any UTF-8 text (and, for
// partition, any bytes) survives the trip between Python and Go.
//
//	partition -n 1,3,8          stdin: ["hex key", ...]       -> {"1": [p, ...], "3": [...], ...}
//	emit -brokers B -topic T    stdin: [["key","value"], ...] -> {"emitted": n}
//	view -brokers B -table T -codec int64|string -state DIR
//	                            stdin: ["key", ...]           -> {"values": {"key": v|null}}
//	count -brokers B -group G -input T -until N -state DIR
//	                                                          -> {"processed": n, "counts": {"key": n}}
//
// Topics are never created here: the tests create them from Python, and Goka's topic manager
// runs with NoCreate so a missing topic is an error instead of a topic with surprising settings.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
)

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: gogoka partition|emit|view|count [flags]"))
	}
	commands := map[string]func([]string) (any, error){
		"partition": partition,
		"emit":      emit,
		"view":      view,
		"count":     count,
	}
	command, ok := commands[os.Args[1]]
	if !ok {
		fail(fmt.Errorf("unknown subcommand %q", os.Args[1]))
	}
	result, err := command(os.Args[2:])
	if err != nil {
		fail(err)
	}
	if err := json.NewEncoder(os.Stdout).Encode(result); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "gogoka: %v\n", err)
	os.Exit(1)
}

// configure makes Goka talk to a current broker and read streams from the start, so a
// processor started after the emitter still sees every message (as Goka's own examples do).
func configure(brokers string) []string {
	config := goka.DefaultConfig()
	// Kafka 4 dropped the old request versions that Goka's default (Kafka 2.0) would pick.
	config.Version = sarama.V3_9_0_0
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	goka.ReplaceGlobalConfig(config)
	return strings.Split(brokers, ",")
}

func topicManager() goka.TopicManagerBuilder {
	tmc := goka.NewTopicManagerConfig()
	tmc.Table.Replication = 1
	tmc.Stream.Replication = 1
	tmc.NoCreate = true
	return goka.TopicManagerBuilderWithTopicManagerConfig(tmc)
}

func readJSON(target any) error {
	if err := json.NewDecoder(os.Stdin).Decode(target); err != nil {
		return fmt.Errorf("reading JSON from stdin: %w", err)
	}
	return nil
}

// partition prints where Sarama's hash partitioner (Goka's default) places each key.
func partition(args []string) (any, error) {
	flags := flag.NewFlagSet("partition", flag.ExitOnError)
	counts := flags.String("n", "", "comma-separated partition counts")
	_ = flags.Parse(args)
	var hexKeys []string
	if err := readJSON(&hexKeys); err != nil {
		return nil, err
	}
	keys := make([][]byte, len(hexKeys))
	for i, h := range hexKeys {
		key, err := hex.DecodeString(h)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		keys[i] = key
	}
	result := map[string][]int32{}
	for _, field := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(field)
		if err != nil {
			return nil, fmt.Errorf("partition count %q: %w", field, err)
		}
		partitioner := sarama.NewHashPartitioner("compat")
		placed := make([]int32, len(keys))
		for i, key := range keys {
			p, err := partitioner.Partition(&sarama.ProducerMessage{Key: sarama.ByteEncoder(key)}, int32(n))
			if err != nil {
				return nil, err
			}
			placed[i] = p
		}
		result[field] = placed
	}
	return result, nil
}

// emit sends each [key, value] pair with goka.Emitter and codec.String, synchronously.
func emit(args []string) (any, error) {
	flags := flag.NewFlagSet("emit", flag.ExitOnError)
	brokers := flags.String("brokers", "", "bootstrap brokers")
	topic := flags.String("topic", "", "topic to emit to")
	_ = flags.Parse(args)
	var pairs [][2]string
	if err := readJSON(&pairs); err != nil {
		return nil, err
	}
	emitter, err := goka.NewEmitter(configure(*brokers), goka.Stream(*topic), new(codec.String))
	if err != nil {
		return nil, err
	}
	for _, pair := range pairs {
		if err := emitter.EmitSync(pair[0], pair[1]); err != nil {
			_ = emitter.Finish()
			return nil, fmt.Errorf("emitting %q: %w", pair[0], err)
		}
	}
	if err := emitter.Finish(); err != nil {
		return nil, err
	}
	return map[string]int{"emitted": len(pairs)}, nil
}

func valueCodec(name string) (goka.Codec, error) {
	switch name {
	case "int64":
		return new(codec.Int64), nil
	case "string":
		return new(codec.String), nil
	}
	return nil, fmt.Errorf("unknown codec %q (want int64 or string)", name)
}

// view runs a goka.View over a table until it recovered and prints the values of the keys.
func view(args []string) (any, error) {
	flags := flag.NewFlagSet("view", flag.ExitOnError)
	brokers := flags.String("brokers", "", "bootstrap brokers")
	table := flags.String("table", "", "table topic")
	codecName := flags.String("codec", "int64", "int64 or string")
	state := flags.String("state", "", "directory of the view's LevelDB state")
	timeout := flags.Duration("timeout", 90*time.Second, "give up after this long")
	_ = flags.Parse(args)
	var keys []string
	if err := readJSON(&keys); err != nil {
		return nil, err
	}
	valueCodec, err := valueCodec(*codecName)
	if err != nil {
		return nil, err
	}
	v, err := goka.NewView(configure(*brokers), goka.Table(*table), valueCodec,
		goka.WithViewTopicManagerBuilder(topicManager()),
		goka.WithViewStorageBuilder(storage.DefaultBuilder(*state)))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- v.Run(ctx) }()
	if err := waitFor(ctx, runErr, v.Recovered); err != nil {
		return nil, fmt.Errorf("view of %s: %w", *table, err)
	}
	values := map[string]any{}
	for _, key := range keys {
		value, err := v.Get(key)
		if err != nil {
			return nil, fmt.Errorf("get %q: %w", key, err)
		}
		values[key] = value
	}
	cancel()
	if err := <-runErr; err != nil {
		return nil, fmt.Errorf("view of %s stopped: %w", *table, err)
	}
	return map[string]any{"values": values}, nil
}

// waitFor polls done until it is true, the run ends, or ctx expires.
func waitFor(ctx context.Context, runErr <-chan error, done func() bool) error {
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for !done() {
		select {
		case err := <-runErr:
			return fmt.Errorf("stopped before it was ready: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", ctx.Err())
		case <-ticker.C:
		}
	}
	return nil
}

// count runs the click-count processor (Input String -> Persist Int64) until it processed
// until messages, then stops it cleanly (committing offsets) and prints the counts it stored.
func count(args []string) (any, error) {
	flags := flag.NewFlagSet("count", flag.ExitOnError)
	brokers := flags.String("brokers", "", "bootstrap brokers")
	group := flags.String("group", "", "processor group")
	input := flags.String("input", "", "input stream")
	until := flags.Int64("until", 0, "stop after this many messages")
	state := flags.String("state", "", "directory of the processor's LevelDB state")
	timeout := flags.Duration("timeout", 120*time.Second, "give up after this long")
	_ = flags.Parse(args)

	var processed atomic.Int64
	reached := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	seen := map[string]bool{}
	callback := func(ctx goka.Context, msg any) {
		var counter int64
		if value := ctx.Value(); value != nil {
			counter = value.(int64)
		}
		ctx.SetValue(counter + 1)
		mu.Lock()
		seen[ctx.Key()] = true
		mu.Unlock()
		if processed.Add(1) >= *until {
			once.Do(func() { close(reached) })
		}
	}
	graph := goka.DefineGroup(goka.Group(*group),
		goka.Input(goka.Stream(*input), new(codec.String), callback),
		goka.Persist(new(codec.Int64)),
	)
	p, err := goka.NewProcessor(configure(*brokers), graph,
		goka.WithTopicManagerBuilder(topicManager()),
		goka.WithStorageBuilder(storage.DefaultBuilder(*state)))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx) }()
	select {
	case <-reached:
	case err := <-runErr:
		return nil, fmt.Errorf("processor stopped after %d messages: %v", processed.Load(), err)
	case <-ctx.Done():
		return nil, fmt.Errorf("processed %d of %d messages: %w", processed.Load(), *until, ctx.Err())
	}
	counts := map[string]int64{}
	mu.Lock()
	for key := range seen {
		value, err := p.Get(key)
		if err != nil {
			mu.Unlock()
			return nil, fmt.Errorf("get %q: %w", key, err)
		}
		counts[key] = value.(int64)
	}
	mu.Unlock()
	cancel()
	if err := <-runErr; err != nil {
		return nil, fmt.Errorf("processor stopped with: %w", err)
	}
	return map[string]any{"processed": processed.Load(), "counts": counts}, nil
}
