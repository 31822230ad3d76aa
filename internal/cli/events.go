package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"banger/api"
	"banger/client"
)

// eventPoll is how often events --follow asks the daemon for news.
const eventPoll = time.Second

func (a *app) eventsCmd() *cobra.Command {
	var (
		vm, image string
		limit     int
		follow    bool
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "events [--vm NAME | --image NAME] [-n N] [-f]",
		Short: "Show what the daemon did: VMs created, stopped (also by auto-stop), images pulled, ...",
		Long: `Show the daemon's event log, oldest first: the newest N events, of one
VM or image or of everything. With --follow, keep printing new events as
they happen (--json then prints one JSON object per line).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if vm != "" && image != "" {
				return fmt.Errorf("--vm and --image are exclusive: pick one subject")
			}
			subject := ""
			switch {
			case vm != "":
				subject = "vm/" + vm
			case image != "":
				subject = "image/" + image
			}
			cl, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			evs, err := cl.Events(cmd.Context(), subject, 0, limit)
			if err != nil {
				return err
			}
			if asJSON && !follow {
				return printJSON(a.stdout, evs)
			}
			print := a.eventPrinter(asJSON)
			var last int64
			for _, e := range evs {
				print(e)
				last = e.ID
			}
			if !follow {
				return nil
			}
			return followEvents(cmd.Context(), cl, subject, last, print)
		},
	}
	cmd.Flags().StringVar(&vm, "vm", "", "only this VM's events")
	cmd.Flags().StringVar(&image, "image", "", "only this image's events")
	cmd.Flags().IntVarP(&limit, "limit", "n", 20, "how many of the newest events to show (at most 1000)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events until interrupted")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (one object per line with --follow)")
	return cmd
}

// eventPrinter prints one event as a line of text, or of JSON.
func (a *app) eventPrinter(asJSON bool) func(api.LogEntry) {
	enc := json.NewEncoder(a.stdout)
	return func(e api.LogEntry) {
		if asJSON {
			enc.Encode(e)
			return
		}
		fmt.Fprintf(a.stdout, "%s  %-5s  %-16s  %s\n", e.Time.Local().Format("2006-01-02 15:04:05"), safe(e.Level), safe(orDash(e.Subject)), safe(e.Message))
	}
}

// followEvents prints the events after id as they come, until ctx ends.
func followEvents(ctx context.Context, cl *client.Client, subject string, id int64, print func(api.LogEntry)) error {
	t := time.NewTicker(eventPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		evs, err := cl.Events(ctx, subject, id, 1000)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, e := range evs {
			print(e)
			id = e.ID
		}
	}
}
