package dynamosink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/internal/backoff"
)

// tableWait bounds how long New waits for the table to become ACTIVE.
const tableWait = 2 * time.Minute

// ensureTable makes sure the table exists with our key schema and is
// ACTIVE. Workers started together race to create it: the loser's
// ResourceInUseException is success once the table is ACTIVE.
func (s *Sink) ensureTable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, tableWait)
	defer cancel()
	name := s.opts.Table
	out, err := s.api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &name})
	var missing *types.ResourceNotFoundException
	switch {
	case errors.As(err, &missing):
		if !*s.opts.CreateTable {
			return fmt.Errorf("dynamosink: table %q does not exist and create_table is false", name)
		}
		if err := s.createTable(ctx); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("dynamosink: describe table %q: %w", name, err)
	default:
		if err := checkSchema(out.Table); err != nil {
			return fmt.Errorf("dynamosink: table %q: %w", name, err)
		}
	}
	return s.waitActive(ctx)
}

func (s *Sink) createTable(ctx context.Context) error {
	name := s.opts.Table
	_, err := s.api.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   &name,
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(AttrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(AttrSK), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(AttrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(AttrSK), KeyType: types.KeyTypeRange},
		},
	})
	var inUse *types.ResourceInUseException
	switch {
	case errors.As(err, &inUse):
		// Another worker created it first; its schema is checked below.
		out, err := s.api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &name})
		if err != nil {
			return fmt.Errorf("dynamosink: describe table %q: %w", name, err)
		}
		if err := checkSchema(out.Table); err != nil {
			return fmt.Errorf("dynamosink: table %q: %w", name, err)
		}
	case err != nil:
		return fmt.Errorf("dynamosink: create table %q: %w", name, err)
	default:
		s.log.Info("table created", zap.String("table", name))
	}
	return nil
}

// waitActive polls DescribeTable until the table is ACTIVE or ctx ends.
func (s *Sink) waitActive(ctx context.Context) error {
	name := s.opts.Table
	poll := backoff.New(backoff.Policy{Min: 20 * time.Millisecond, Max: time.Second, Sleep: s.retry.Sleep})
	for {
		out, err := s.api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &name})
		var missing *types.ResourceNotFoundException
		switch {
		case err == nil && out.Table != nil && out.Table.TableStatus == types.TableStatusActive:
			return nil
		case err != nil && !errors.As(err, &missing): // not yet visible is fine
			return fmt.Errorf("dynamosink: describe table %q: %w", name, err)
		}
		if err := poll.Wait(ctx); err != nil {
			return fmt.Errorf("dynamosink: table %q not ACTIVE: %w", name, err)
		}
	}
}

// checkSchema reports a table whose key is not pk (S, HASH), sk (S, RANGE).
func checkSchema(t *types.TableDescription) error {
	if t == nil {
		return fmt.Errorf("%w: no description", ErrTableSchema)
	}
	keys := map[string]types.KeyType{}
	for _, k := range t.KeySchema {
		keys[aws.ToString(k.AttributeName)] = k.KeyType
	}
	attrs := map[string]types.ScalarAttributeType{}
	for _, a := range t.AttributeDefinitions {
		attrs[aws.ToString(a.AttributeName)] = a.AttributeType
	}
	if len(keys) != 2 || keys[AttrPK] != types.KeyTypeHash || keys[AttrSK] != types.KeyTypeRange ||
		attrs[AttrPK] != types.ScalarAttributeTypeS || attrs[AttrSK] != types.ScalarAttributeTypeS {
		return fmt.Errorf("%w: want %s (S, HASH) and %s (S, RANGE), have %v", ErrTableSchema, AttrPK, AttrSK, keys)
	}
	return nil
}
