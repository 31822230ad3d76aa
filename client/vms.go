package client

import (
	"context"
	"fmt"
	"io"

	"banger/api"
)

// VMs lists VMs.
func (c *Client) VMs(ctx context.Context) ([]api.VM, error) {
	var out []api.VM
	return out, c.call(ctx, "GET", "/vms", nil, &out)
}

// VM returns one VM.
func (c *Client) VM(ctx context.Context, name string) (api.VM, error) {
	var out api.VM
	return out, c.call(ctx, "GET", "/vms/"+esc(name), nil, &out)
}

// CreateVM creates and boots a VM, returning once its agent answers.
func (c *Client) CreateVM(ctx context.Context, req api.CreateVMRequest, onEvent func(api.Event)) (api.VM, error) {
	var out api.VM
	return out, c.stream(ctx, "POST", "/vms", req, &out, onEvent)
}

// StartVM boots a stopped VM.
func (c *Client) StartVM(ctx context.Context, name string, onEvent func(api.Event)) (api.VM, error) {
	var out api.VM
	return out, c.stream(ctx, "POST", "/vms/"+esc(name)+"/start", nil, &out, onEvent)
}

// RestartVM stops and boots a VM.
func (c *Client) RestartVM(ctx context.Context, name string, onEvent func(api.Event)) (api.VM, error) {
	var out api.VM
	return out, c.stream(ctx, "POST", "/vms/"+esc(name)+"/restart", nil, &out, onEvent)
}

// StopVM shuts a VM down.
func (c *Client) StopVM(ctx context.Context, name string) (api.VM, error) {
	var out api.VM
	return out, c.call(ctx, "POST", "/vms/"+esc(name)+"/stop", nil, &out)
}

// DeleteVM removes a VM and everything it holds.
func (c *Client) DeleteVM(ctx context.Context, name string, force bool) error {
	return c.call(ctx, "DELETE", "/vms/"+esc(name)+forceQuery(force), nil, nil)
}

// Ports lists a VM's listening sockets.
func (c *Client) Ports(ctx context.Context, name string) ([]api.Port, error) {
	var out []api.Port
	return out, c.call(ctx, "GET", "/vms/"+esc(name)+"/ports", nil, &out)
}

// ConsoleLog copies a VM's console log to w (following it if asked).
func (c *Client) ConsoleLog(ctx context.Context, name string, follow bool, w io.Writer) error {
	resp, err := c.do(ctx, "GET", fmt.Sprintf("/vms/%s/logs?follow=%t", esc(name), follow), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return nil
	}
	return err
}
