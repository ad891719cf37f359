// Command gokabench runs Go Goka (lovoo/goka with IBM/sarama and its default LevelDB storage) for
// pygoka's comparison benchmark, bench/compare.py, with the same logic as the pygoka side.
//
//	count -brokers B -group G -input T -state DIR
//	    count per key: Input(String) -> Persist(Int64), until SIGTERM
//	join -brokers B -group G -input T -profiles P -output O -state DIR
//	    Join(P, String); for every click count per key and emit "<profile>,<count>" to O, until SIGTERM
//	view -brokers B -table T -state DIR
//	    recover a goka.View of table T, then print "RECOVERED <keys> <sum of values>" and exit
//	recover -brokers B -group G -input T -keys N -state DIR
//	    a processor of G recovers its preloaded table G-table; print "RECOVERED <keys> <sum>" and exit
//
// count and join print "RUNNING" once the processor runs; completion is judged by the harness from
// the group's committed offsets and the result from the table or output topic. Topics are created by
// the harness; Goka's topic manager runs with NoCreate.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
)

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: gokabench count|join|view|recover [flags]"))
	}
	flags := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	brokers := flags.String("brokers", "", "bootstrap brokers")
	group := flags.String("group", "", "processor group")
	input := flags.String("input", "", "input stream")
	profiles := flags.String("profiles", "", "profile table topic (join)")
	output := flags.String("output", "", "output stream (join)")
	table := flags.String("table", "", "table topic (view)")
	keys := flags.Int("keys", 0, "keys of the preloaded table (recover)")
	state := flags.String("state", "", "directory of the LevelDB state")
	_ = flags.Parse(os.Args[2:])
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var err error
	switch os.Args[1] {
	case "count", "join":
		err = process(ctx, os.Args[1], *brokers, *group, *input, *profiles, *output, *state)
	case "view":
		err = recoverView(ctx, *brokers, *table, *state)
	case "recover":
		err = recoverProcessor(ctx, *brokers, *group, *input, *keys, *state)
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "gokabench: %v\n", err)
	os.Exit(1)
}

// configure makes Goka talk to a Kafka 4 broker and read streams from the start.
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

func increment(ctx goka.Context) int64 {
	var counter int64
	if value := ctx.Value(); value != nil {
		counter = value.(int64)
	}
	counter++
	ctx.SetValue(counter)
	return counter
}

func process(ctx context.Context, mode, brokers, group, input, profiles, output, state string) error {
	edges := []goka.Edge{goka.Persist(new(codec.Int64))}
	if mode == "count" {
		edges = append(edges, goka.Input(goka.Stream(input), new(codec.String), func(ctx goka.Context, msg any) {
			increment(ctx)
		}))
	} else {
		edges = append(edges,
			goka.Input(goka.Stream(input), new(codec.String), func(ctx goka.Context, msg any) {
				count := increment(ctx)
				profile, _ := ctx.Join(goka.Table(profiles)).(string)
				ctx.Emit(goka.Stream(output), ctx.Key(), profile+","+strconv.FormatInt(count, 10))
			}),
			goka.Join(goka.Table(profiles), new(codec.String)),
			goka.Output(goka.Stream(output), new(codec.String)))
	}
	p, err := goka.NewProcessor(configure(brokers), goka.DefineGroup(goka.Group(group), edges...),
		goka.WithTopicManagerBuilder(topicManager()),
		goka.WithStorageBuilder(storage.DefaultBuilder(state)))
	if err != nil {
		return err
	}
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx) }()
	go func() {
		for !p.Recovered() {
			time.Sleep(10 * time.Millisecond)
		}
		fmt.Println("RUNNING")
	}()
	return <-runErr
}

func recoverView(ctx context.Context, brokers, table, state string) error {
	v, err := goka.NewView(configure(brokers), goka.Table(table), new(codec.Int64),
		goka.WithViewTopicManagerBuilder(topicManager()),
		goka.WithViewStorageBuilder(storage.DefaultBuilder(state)))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- v.Run(ctx) }()
	for !v.Recovered() {
		select {
		case err := <-runErr:
			cancel()
			return fmt.Errorf("view stopped before recovering: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	fmt.Println("RUNNING")
	it, err := v.Iterator()
	if err != nil {
		cancel()
		return err
	}
	var keys, sum int64
	for it.Next() {
		value, err := it.Value()
		if err != nil {
			cancel()
			return err
		}
		keys++
		sum += value.(int64)
	}
	it.Release()
	fmt.Printf("RECOVERED %d %d\n", keys, sum)
	cancel()
	return <-runErr
}

func recoverProcessor(ctx context.Context, brokers, group, input string, keys int, state string) error {
	graph := goka.DefineGroup(goka.Group(group),
		goka.Input(goka.Stream(input), new(codec.String), func(ctx goka.Context, msg any) {}),
		goka.Persist(new(codec.Int64)))
	p, err := goka.NewProcessor(configure(brokers), graph,
		goka.WithTopicManagerBuilder(topicManager()),
		goka.WithStorageBuilder(storage.DefaultBuilder(state)))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx) }()
	for !p.Recovered() {
		select {
		case err := <-runErr:
			cancel()
			return fmt.Errorf("processor stopped before recovering: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	fmt.Println("RUNNING")
	var found, sum int64
	for i := 0; i < keys; i++ {
		value, err := p.Get(fmt.Sprintf("key-%07d", i))
		if err != nil {
			cancel()
			return err
		}
		if value != nil {
			found++
			sum += value.(int64)
		}
	}
	fmt.Printf("RECOVERED %d %d\n", found, sum)
	cancel()
	return <-runErr
}
