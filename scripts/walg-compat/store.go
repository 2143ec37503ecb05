package main

// S3 access under WALG_S3_PREFIX. Every call is bounded in time: a hung S3 must make wal-fetch fail (so
// Postgres retries) rather than hang recovery, and must make backup-push fail rather than hang a runbook.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

var errNotFound = errors.New("object not found")

type store struct {
	c       *s3.Client
	bucket  string
	root    string // key prefix, with a trailing "/"
	timeout time.Duration
}

type object struct {
	rel      string // key relative to root
	modified time.Time
	size     int64
}

// newStore reads WAL-G's environment. Credentials come from the SDK default chain (env keys, or
// AWS_PROFILE + AWS_SHARED_CREDENTIALS_FILE); they are never printed.
func newStore(ctx context.Context) (*store, error) {
	url := os.Getenv("WALG_S3_PREFIX")
	if url == "" {
		url = os.Getenv("WALE_S3_PREFIX") // Spilo sets both; WAL-G accepts either
	}
	rest, ok := strings.CutPrefix(url, "s3://")
	bucket, key, _ := strings.Cut(rest, "/")
	if !ok || bucket == "" {
		return nil, fmt.Errorf("WALG_S3_PREFIX must be s3://bucket[/path], got %q", url)
	}
	root := strings.Trim(key, "/")
	if root != "" {
		root += "/"
	}
	opts := []func(*config.LoadOptions) error{config.WithRetryMaxAttempts(3)}
	// No instance-metadata lookups unless asked for: off a cloud VM they only add delay (and traffic to a
	// link-local address) before the real "no credentials" error.
	if os.Getenv("AWS_EC2_METADATA_DISABLED") != "false" {
		opts = append(opts, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		opts = append(opts, config.WithRegion("us-east-1"))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	endpoint := os.Getenv("AWS_ENDPOINT")
	pathStyle := os.Getenv("AWS_S3_FORCE_PATH_STYLE") == "true"
	c := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = pathStyle
		// S3-compatible servers (MinIO, versitygw, Ceph) differ in support for the SDK's newer default
		// checksums; send and check them only where S3 requires them, as WAL-G's SDK does.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	timeout := 60 * time.Second
	if v := os.Getenv("WALG_COMPAT_S3_TIMEOUT"); v != "" {
		if timeout, err = time.ParseDuration(v + "s"); err != nil || timeout <= 0 {
			return nil, fmt.Errorf("WALG_COMPAT_S3_TIMEOUT must be a number of seconds, got %q", v)
		}
	}
	return &store{c: c, bucket: bucket, root: root, timeout: timeout}, nil
}

func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var api smithy.APIError
	return errors.As(err, &nsk) || (errors.As(err, &api) && (api.ErrorCode() == "NoSuchKey" || api.ErrorCode() == "NotFound"))
}

func (s *store) url(rel string) string { return "s3://" + s.bucket + "/" + s.root + rel }

func (s *store) put(ctx context.Context, rel string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: aws.String(s.root + rel), Body: bytes.NewReader(body)})
	if err != nil {
		return fmt.Errorf("upload %s: %w", s.url(rel), err)
	}
	return nil
}

func (s *store) delete(ctx context.Context, rel string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.root + rel)}); err != nil {
		return fmt.Errorf("delete %s: %w", s.url(rel), err)
	}
	return nil
}

// get reads a small object whole; errNotFound (wrapped) when it does not exist.
func (s *store) get(ctx context.Context, rel string) ([]byte, error) {
	r, err := s.open(ctx, rel)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", s.url(rel), err)
	}
	return b, nil
}

// open streams an object. The bound is on stalls, not on the whole download (a base backup may take hours):
// the request is cancelled when no byte arrived for the timeout.
func (s *store) open(ctx context.Context, rel string) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &watchdogReader{ctx: ctx, cancel: cancel, done: make(chan struct{})}
	w.touch()
	go w.watch(s.timeout)
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.root + rel)})
	if err != nil {
		err = w.explain(err)
		w.Close()
		if isNotFound(err) {
			return nil, fmt.Errorf("%s: %w", s.url(rel), errNotFound)
		}
		return nil, fmt.Errorf("download %s: %w", s.url(rel), err)
	}
	w.body = out.Body
	return w, nil
}

type watchdogReader struct {
	body   io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	last   atomic.Int64
	done   chan struct{}
	closed atomic.Bool
}

func (w *watchdogReader) touch() { w.last.Store(time.Now().UnixNano()) }

func (w *watchdogReader) watch(timeout time.Duration) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
			if time.Since(time.Unix(0, w.last.Load())) > timeout {
				w.cancel(fmt.Errorf("no data from S3 for %s (WALG_COMPAT_S3_TIMEOUT)", timeout))
				return
			}
		}
	}
}

func (w *watchdogReader) Read(p []byte) (int, error) {
	n, err := w.body.Read(p)
	if n > 0 {
		w.touch()
	}
	if err != nil && err != io.EOF {
		err = w.explain(err)
	}
	return n, err
}

// explain adds the watchdog's reason to the SDK's bare "context canceled".
func (w *watchdogReader) explain(err error) error {
	if c := context.Cause(w.ctx); c != nil && c != context.Canceled {
		return fmt.Errorf("%w: %v", err, c)
	}
	return err
}

func (w *watchdogReader) Close() error {
	if !w.closed.Swap(true) {
		close(w.done)
		w.cancel(nil)
	}
	if w.body != nil {
		return w.body.Close()
	}
	return nil
}

// list returns the objects whose key starts with relPrefix; with flat, only those directly in that "folder".
func (s *store) list(ctx context.Context, relPrefix string, flat bool) ([]object, error) {
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.root + relPrefix)}
	if flat {
		in.Delimiter = aws.String("/")
	}
	var objs []object
	for p := s3.NewListObjectsV2Paginator(s.c, in); p.HasMorePages(); {
		pctx, cancel := context.WithTimeout(ctx, s.timeout)
		page, err := p.NextPage(pctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", s.url(relPrefix), err)
		}
		for _, o := range page.Contents {
			objs = append(objs, object{rel: strings.TrimPrefix(aws.ToString(o.Key), s.root), modified: aws.ToTime(o.LastModified), size: aws.ToInt64(o.Size)})
		}
	}
	return objs, nil
}

// partSize grows with the part number so that S3's 10,000-part limit allows ~1.8 TiB, while small backups
// keep 16 MiB parts in memory.
func partSize(n int32) int {
	return min(16<<20<<((n-1)/1000), 256<<20)
}

// uploadStream uploads r as one object by multipart upload, one part at a time, each bounded by the timeout
// per 16 MiB. onPart gets the bytes uploaded so far. On any error the upload is aborted.
func (s *store) uploadStream(ctx context.Context, rel string, r io.Reader, onPart func(int64)) (total int64, err error) {
	key := aws.String(s.root + rel)
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	up, err := s.c.CreateMultipartUpload(cctx, &s3.CreateMultipartUploadInput{Bucket: &s.bucket, Key: key})
	cancel()
	if err != nil {
		return 0, fmt.Errorf("start upload of %s: %w", s.url(rel), err)
	}
	defer func() {
		if err != nil { // a fresh context: ctx may be the reason we are aborting
			actx, cancel := context.WithTimeout(context.Background(), s.timeout)
			defer cancel()
			s.c.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: key, UploadId: up.UploadId})
		}
	}()
	var parts []types.CompletedPart
	var buf []byte
	for n := int32(1); ; n++ {
		if size := partSize(n); len(buf) != size {
			buf = make([]byte, size)
		}
		k, rerr := io.ReadFull(r, buf)
		if k > 0 || n == 1 {
			pctx, cancel := context.WithTimeout(ctx, s.timeout*time.Duration(len(buf)>>24))
			out, perr := s.c.UploadPart(pctx, &s3.UploadPartInput{Bucket: &s.bucket, Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(n), Body: bytes.NewReader(buf[:k])})
			cancel()
			if perr != nil {
				return total, fmt.Errorf("upload part %d of %s: %w", n, s.url(rel), perr)
			}
			parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
			total += int64(k)
			onPart(total)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return total, rerr
		}
	}
	cctx, cancel = context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err = s.c.CompleteMultipartUpload(cctx, &s3.CompleteMultipartUploadInput{Bucket: &s.bucket, Key: key, UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	if err != nil {
		return total, fmt.Errorf("finish upload of %s: %w", s.url(rel), err)
	}
	return total, nil
}
