package dev.keyservice.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * KeyService answers "is this API key valid, and whose is it?" and lets
 * administrators create, inspect, list, update, rotate and revoke keys, and
 * read the audit trail of those changes.
 * Validate may be called by any caller. Every other method needs an admin
 * token: `authorization: Bearer &lt;token&gt;`.
 * </pre>
 */
@javax.annotation.Generated(
    value = "by gRPC proto compiler",
    comments = "Source: keyservice/v1/keyservice.proto")
@io.grpc.stub.annotations.GrpcGenerated
public final class KeyServiceGrpc {

  private KeyServiceGrpc() {}

  public static final String SERVICE_NAME = "keyservice.v1.KeyService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.ValidateRequest,
      dev.keyservice.v1.ValidateResponse> getValidateMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Validate",
      requestType = dev.keyservice.v1.ValidateRequest.class,
      responseType = dev.keyservice.v1.ValidateResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.ValidateRequest,
      dev.keyservice.v1.ValidateResponse> getValidateMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.ValidateRequest, dev.keyservice.v1.ValidateResponse> getValidateMethod;
    if ((getValidateMethod = KeyServiceGrpc.getValidateMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getValidateMethod = KeyServiceGrpc.getValidateMethod) == null) {
          KeyServiceGrpc.getValidateMethod = getValidateMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.ValidateRequest, dev.keyservice.v1.ValidateResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Validate"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.ValidateRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.ValidateResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("Validate"))
              .build();
        }
      }
    }
    return getValidateMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.CreateKeyRequest,
      dev.keyservice.v1.CreateKeyResponse> getCreateKeyMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "CreateKey",
      requestType = dev.keyservice.v1.CreateKeyRequest.class,
      responseType = dev.keyservice.v1.CreateKeyResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.CreateKeyRequest,
      dev.keyservice.v1.CreateKeyResponse> getCreateKeyMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.CreateKeyRequest, dev.keyservice.v1.CreateKeyResponse> getCreateKeyMethod;
    if ((getCreateKeyMethod = KeyServiceGrpc.getCreateKeyMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getCreateKeyMethod = KeyServiceGrpc.getCreateKeyMethod) == null) {
          KeyServiceGrpc.getCreateKeyMethod = getCreateKeyMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.CreateKeyRequest, dev.keyservice.v1.CreateKeyResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "CreateKey"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.CreateKeyRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.CreateKeyResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("CreateKey"))
              .build();
        }
      }
    }
    return getCreateKeyMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.GetKeyRequest,
      dev.keyservice.v1.GetKeyResponse> getGetKeyMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetKey",
      requestType = dev.keyservice.v1.GetKeyRequest.class,
      responseType = dev.keyservice.v1.GetKeyResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.GetKeyRequest,
      dev.keyservice.v1.GetKeyResponse> getGetKeyMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.GetKeyRequest, dev.keyservice.v1.GetKeyResponse> getGetKeyMethod;
    if ((getGetKeyMethod = KeyServiceGrpc.getGetKeyMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getGetKeyMethod = KeyServiceGrpc.getGetKeyMethod) == null) {
          KeyServiceGrpc.getGetKeyMethod = getGetKeyMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.GetKeyRequest, dev.keyservice.v1.GetKeyResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetKey"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.GetKeyRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.GetKeyResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("GetKey"))
              .build();
        }
      }
    }
    return getGetKeyMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.ListKeysRequest,
      dev.keyservice.v1.ListKeysResponse> getListKeysMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListKeys",
      requestType = dev.keyservice.v1.ListKeysRequest.class,
      responseType = dev.keyservice.v1.ListKeysResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.ListKeysRequest,
      dev.keyservice.v1.ListKeysResponse> getListKeysMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.ListKeysRequest, dev.keyservice.v1.ListKeysResponse> getListKeysMethod;
    if ((getListKeysMethod = KeyServiceGrpc.getListKeysMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getListKeysMethod = KeyServiceGrpc.getListKeysMethod) == null) {
          KeyServiceGrpc.getListKeysMethod = getListKeysMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.ListKeysRequest, dev.keyservice.v1.ListKeysResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListKeys"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.ListKeysRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.ListKeysResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("ListKeys"))
              .build();
        }
      }
    }
    return getListKeysMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.RevokeKeyRequest,
      dev.keyservice.v1.RevokeKeyResponse> getRevokeKeyMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "RevokeKey",
      requestType = dev.keyservice.v1.RevokeKeyRequest.class,
      responseType = dev.keyservice.v1.RevokeKeyResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.RevokeKeyRequest,
      dev.keyservice.v1.RevokeKeyResponse> getRevokeKeyMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.RevokeKeyRequest, dev.keyservice.v1.RevokeKeyResponse> getRevokeKeyMethod;
    if ((getRevokeKeyMethod = KeyServiceGrpc.getRevokeKeyMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getRevokeKeyMethod = KeyServiceGrpc.getRevokeKeyMethod) == null) {
          KeyServiceGrpc.getRevokeKeyMethod = getRevokeKeyMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.RevokeKeyRequest, dev.keyservice.v1.RevokeKeyResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "RevokeKey"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.RevokeKeyRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.RevokeKeyResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("RevokeKey"))
              .build();
        }
      }
    }
    return getRevokeKeyMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.UpdateKeyRequest,
      dev.keyservice.v1.UpdateKeyResponse> getUpdateKeyMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "UpdateKey",
      requestType = dev.keyservice.v1.UpdateKeyRequest.class,
      responseType = dev.keyservice.v1.UpdateKeyResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.UpdateKeyRequest,
      dev.keyservice.v1.UpdateKeyResponse> getUpdateKeyMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.UpdateKeyRequest, dev.keyservice.v1.UpdateKeyResponse> getUpdateKeyMethod;
    if ((getUpdateKeyMethod = KeyServiceGrpc.getUpdateKeyMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getUpdateKeyMethod = KeyServiceGrpc.getUpdateKeyMethod) == null) {
          KeyServiceGrpc.getUpdateKeyMethod = getUpdateKeyMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.UpdateKeyRequest, dev.keyservice.v1.UpdateKeyResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "UpdateKey"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.UpdateKeyRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.UpdateKeyResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("UpdateKey"))
              .build();
        }
      }
    }
    return getUpdateKeyMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.RotateKeyRequest,
      dev.keyservice.v1.RotateKeyResponse> getRotateKeyMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "RotateKey",
      requestType = dev.keyservice.v1.RotateKeyRequest.class,
      responseType = dev.keyservice.v1.RotateKeyResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.RotateKeyRequest,
      dev.keyservice.v1.RotateKeyResponse> getRotateKeyMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.RotateKeyRequest, dev.keyservice.v1.RotateKeyResponse> getRotateKeyMethod;
    if ((getRotateKeyMethod = KeyServiceGrpc.getRotateKeyMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getRotateKeyMethod = KeyServiceGrpc.getRotateKeyMethod) == null) {
          KeyServiceGrpc.getRotateKeyMethod = getRotateKeyMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.RotateKeyRequest, dev.keyservice.v1.RotateKeyResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "RotateKey"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.RotateKeyRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.RotateKeyResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("RotateKey"))
              .build();
        }
      }
    }
    return getRotateKeyMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.ListAuditEventsRequest,
      dev.keyservice.v1.ListAuditEventsResponse> getListAuditEventsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListAuditEvents",
      requestType = dev.keyservice.v1.ListAuditEventsRequest.class,
      responseType = dev.keyservice.v1.ListAuditEventsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.ListAuditEventsRequest,
      dev.keyservice.v1.ListAuditEventsResponse> getListAuditEventsMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.ListAuditEventsRequest, dev.keyservice.v1.ListAuditEventsResponse> getListAuditEventsMethod;
    if ((getListAuditEventsMethod = KeyServiceGrpc.getListAuditEventsMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getListAuditEventsMethod = KeyServiceGrpc.getListAuditEventsMethod) == null) {
          KeyServiceGrpc.getListAuditEventsMethod = getListAuditEventsMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.ListAuditEventsRequest, dev.keyservice.v1.ListAuditEventsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListAuditEvents"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.ListAuditEventsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.ListAuditEventsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("ListAuditEvents"))
              .build();
        }
      }
    }
    return getListAuditEventsMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static KeyServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<KeyServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<KeyServiceStub>() {
        @java.lang.Override
        public KeyServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new KeyServiceStub(channel, callOptions);
        }
      };
    return KeyServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static KeyServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<KeyServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<KeyServiceBlockingStub>() {
        @java.lang.Override
        public KeyServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new KeyServiceBlockingStub(channel, callOptions);
        }
      };
    return KeyServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static KeyServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<KeyServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<KeyServiceFutureStub>() {
        @java.lang.Override
        public KeyServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new KeyServiceFutureStub(channel, callOptions);
        }
      };
    return KeyServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * KeyService answers "is this API key valid, and whose is it?" and lets
   * administrators create, inspect, list, update, rotate and revoke keys, and
   * read the audit trail of those changes.
   * Validate may be called by any caller. Every other method needs an admin
   * token: `authorization: Bearer &lt;token&gt;`.
   * </pre>
   */
  public static abstract class KeyServiceImplBase implements io.grpc.BindableService {

    /**
     * <pre>
     * Validate checks a key. A wrong key is an answer (code != CODE_VALID),
     * not an error.
     * </pre>
     */
    public void validate(dev.keyservice.v1.ValidateRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.ValidateResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getValidateMethod(), responseObserver);
    }

    /**
     * <pre>
     * CreateKey creates a key and returns its plaintext secret. The secret is
     * shown only in this response; keyservice stores only its SHA-256 hash.
     * </pre>
     */
    public void createKey(dev.keyservice.v1.CreateKeyRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.CreateKeyResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getCreateKeyMethod(), responseObserver);
    }

    /**
     * <pre>
     * GetKey returns the stored record of a key.
     * </pre>
     */
    public void getKey(dev.keyservice.v1.GetKeyRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.GetKeyResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetKeyMethod(), responseObserver);
    }

    /**
     * <pre>
     * ListKeys lists keys, oldest first, optionally for one owner.
     * </pre>
     */
    public void listKeys(dev.keyservice.v1.ListKeysRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.ListKeysResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListKeysMethod(), responseObserver);
    }

    /**
     * <pre>
     * RevokeKey revokes a key. It is idempotent: revoking a revoked key
     * returns the original revoked_at.
     * </pre>
     */
    public void revokeKey(dev.keyservice.v1.RevokeKeyRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.RevokeKeyResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRevokeKeyMethod(), responseObserver);
    }

    /**
     * <pre>
     * UpdateKey changes the fields of a key named in update_mask (AIP-134):
     * name, scopes, metadata, expires_at, rate_limit, enabled, allowed_cidrs.
     * A field in the mask but unset in key is cleared (expires_at: never
     * expires; rate_limit: the configured default). Over REST the mask may be
     * given as ?update_mask=name,scopes; without it, the fields present in the
     * body are the mask. A revoked key cannot be updated (FAILED_PRECONDITION).
     * </pre>
     */
    public void updateKey(dev.keyservice.v1.UpdateKeyRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.UpdateKeyResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getUpdateKeyMethod(), responseObserver);
    }

    /**
     * <pre>
     * RotateKey issues a new key that copies the old key's name, owner,
     * scopes, metadata, limits and allowed addresses, and lets the old key
     * expire after grace_period. Both are valid during the grace period.
     * </pre>
     */
    public void rotateKey(dev.keyservice.v1.RotateKeyRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.RotateKeyResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRotateKeyMethod(), responseObserver);
    }

    /**
     * <pre>
     * ListAuditEvents lists admin changes to keys, newest first, optionally
     * for one key or one actor.
     * </pre>
     */
    public void listAuditEvents(dev.keyservice.v1.ListAuditEventsRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.ListAuditEventsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListAuditEventsMethod(), responseObserver);
    }

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
          .addMethod(
            getValidateMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.ValidateRequest,
                dev.keyservice.v1.ValidateResponse>(
                  this, METHODID_VALIDATE)))
          .addMethod(
            getCreateKeyMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.CreateKeyRequest,
                dev.keyservice.v1.CreateKeyResponse>(
                  this, METHODID_CREATE_KEY)))
          .addMethod(
            getGetKeyMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.GetKeyRequest,
                dev.keyservice.v1.GetKeyResponse>(
                  this, METHODID_GET_KEY)))
          .addMethod(
            getListKeysMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.ListKeysRequest,
                dev.keyservice.v1.ListKeysResponse>(
                  this, METHODID_LIST_KEYS)))
          .addMethod(
            getRevokeKeyMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.RevokeKeyRequest,
                dev.keyservice.v1.RevokeKeyResponse>(
                  this, METHODID_REVOKE_KEY)))
          .addMethod(
            getUpdateKeyMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.UpdateKeyRequest,
                dev.keyservice.v1.UpdateKeyResponse>(
                  this, METHODID_UPDATE_KEY)))
          .addMethod(
            getRotateKeyMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.RotateKeyRequest,
                dev.keyservice.v1.RotateKeyResponse>(
                  this, METHODID_ROTATE_KEY)))
          .addMethod(
            getListAuditEventsMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.ListAuditEventsRequest,
                dev.keyservice.v1.ListAuditEventsResponse>(
                  this, METHODID_LIST_AUDIT_EVENTS)))
          .build();
    }
  }

  /**
   * <pre>
   * KeyService answers "is this API key valid, and whose is it?" and lets
   * administrators create, inspect, list, update, rotate and revoke keys, and
   * read the audit trail of those changes.
   * Validate may be called by any caller. Every other method needs an admin
   * token: `authorization: Bearer &lt;token&gt;`.
   * </pre>
   */
  public static final class KeyServiceStub extends io.grpc.stub.AbstractAsyncStub<KeyServiceStub> {
    private KeyServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected KeyServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new KeyServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Validate checks a key. A wrong key is an answer (code != CODE_VALID),
     * not an error.
     * </pre>
     */
    public void validate(dev.keyservice.v1.ValidateRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.ValidateResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getValidateMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * CreateKey creates a key and returns its plaintext secret. The secret is
     * shown only in this response; keyservice stores only its SHA-256 hash.
     * </pre>
     */
    public void createKey(dev.keyservice.v1.CreateKeyRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.CreateKeyResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getCreateKeyMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * GetKey returns the stored record of a key.
     * </pre>
     */
    public void getKey(dev.keyservice.v1.GetKeyRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.GetKeyResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetKeyMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * ListKeys lists keys, oldest first, optionally for one owner.
     * </pre>
     */
    public void listKeys(dev.keyservice.v1.ListKeysRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.ListKeysResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListKeysMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * RevokeKey revokes a key. It is idempotent: revoking a revoked key
     * returns the original revoked_at.
     * </pre>
     */
    public void revokeKey(dev.keyservice.v1.RevokeKeyRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.RevokeKeyResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRevokeKeyMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * UpdateKey changes the fields of a key named in update_mask (AIP-134):
     * name, scopes, metadata, expires_at, rate_limit, enabled, allowed_cidrs.
     * A field in the mask but unset in key is cleared (expires_at: never
     * expires; rate_limit: the configured default). Over REST the mask may be
     * given as ?update_mask=name,scopes; without it, the fields present in the
     * body are the mask. A revoked key cannot be updated (FAILED_PRECONDITION).
     * </pre>
     */
    public void updateKey(dev.keyservice.v1.UpdateKeyRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.UpdateKeyResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getUpdateKeyMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * RotateKey issues a new key that copies the old key's name, owner,
     * scopes, metadata, limits and allowed addresses, and lets the old key
     * expire after grace_period. Both are valid during the grace period.
     * </pre>
     */
    public void rotateKey(dev.keyservice.v1.RotateKeyRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.RotateKeyResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRotateKeyMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * ListAuditEvents lists admin changes to keys, newest first, optionally
     * for one key or one actor.
     * </pre>
     */
    public void listAuditEvents(dev.keyservice.v1.ListAuditEventsRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.ListAuditEventsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListAuditEventsMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * <pre>
   * KeyService answers "is this API key valid, and whose is it?" and lets
   * administrators create, inspect, list, update, rotate and revoke keys, and
   * read the audit trail of those changes.
   * Validate may be called by any caller. Every other method needs an admin
   * token: `authorization: Bearer &lt;token&gt;`.
   * </pre>
   */
  public static final class KeyServiceBlockingStub extends io.grpc.stub.AbstractBlockingStub<KeyServiceBlockingStub> {
    private KeyServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected KeyServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new KeyServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Validate checks a key. A wrong key is an answer (code != CODE_VALID),
     * not an error.
     * </pre>
     */
    public dev.keyservice.v1.ValidateResponse validate(dev.keyservice.v1.ValidateRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getValidateMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * CreateKey creates a key and returns its plaintext secret. The secret is
     * shown only in this response; keyservice stores only its SHA-256 hash.
     * </pre>
     */
    public dev.keyservice.v1.CreateKeyResponse createKey(dev.keyservice.v1.CreateKeyRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getCreateKeyMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * GetKey returns the stored record of a key.
     * </pre>
     */
    public dev.keyservice.v1.GetKeyResponse getKey(dev.keyservice.v1.GetKeyRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetKeyMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ListKeys lists keys, oldest first, optionally for one owner.
     * </pre>
     */
    public dev.keyservice.v1.ListKeysResponse listKeys(dev.keyservice.v1.ListKeysRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListKeysMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * RevokeKey revokes a key. It is idempotent: revoking a revoked key
     * returns the original revoked_at.
     * </pre>
     */
    public dev.keyservice.v1.RevokeKeyResponse revokeKey(dev.keyservice.v1.RevokeKeyRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRevokeKeyMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * UpdateKey changes the fields of a key named in update_mask (AIP-134):
     * name, scopes, metadata, expires_at, rate_limit, enabled, allowed_cidrs.
     * A field in the mask but unset in key is cleared (expires_at: never
     * expires; rate_limit: the configured default). Over REST the mask may be
     * given as ?update_mask=name,scopes; without it, the fields present in the
     * body are the mask. A revoked key cannot be updated (FAILED_PRECONDITION).
     * </pre>
     */
    public dev.keyservice.v1.UpdateKeyResponse updateKey(dev.keyservice.v1.UpdateKeyRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getUpdateKeyMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * RotateKey issues a new key that copies the old key's name, owner,
     * scopes, metadata, limits and allowed addresses, and lets the old key
     * expire after grace_period. Both are valid during the grace period.
     * </pre>
     */
    public dev.keyservice.v1.RotateKeyResponse rotateKey(dev.keyservice.v1.RotateKeyRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRotateKeyMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ListAuditEvents lists admin changes to keys, newest first, optionally
     * for one key or one actor.
     * </pre>
     */
    public dev.keyservice.v1.ListAuditEventsResponse listAuditEvents(dev.keyservice.v1.ListAuditEventsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListAuditEventsMethod(), getCallOptions(), request);
    }
  }

  /**
   * <pre>
   * KeyService answers "is this API key valid, and whose is it?" and lets
   * administrators create, inspect, list, update, rotate and revoke keys, and
   * read the audit trail of those changes.
   * Validate may be called by any caller. Every other method needs an admin
   * token: `authorization: Bearer &lt;token&gt;`.
   * </pre>
   */
  public static final class KeyServiceFutureStub extends io.grpc.stub.AbstractFutureStub<KeyServiceFutureStub> {
    private KeyServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected KeyServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new KeyServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Validate checks a key. A wrong key is an answer (code != CODE_VALID),
     * not an error.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.ValidateResponse> validate(
        dev.keyservice.v1.ValidateRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getValidateMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * CreateKey creates a key and returns its plaintext secret. The secret is
     * shown only in this response; keyservice stores only its SHA-256 hash.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.CreateKeyResponse> createKey(
        dev.keyservice.v1.CreateKeyRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getCreateKeyMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * GetKey returns the stored record of a key.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.GetKeyResponse> getKey(
        dev.keyservice.v1.GetKeyRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetKeyMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * ListKeys lists keys, oldest first, optionally for one owner.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.ListKeysResponse> listKeys(
        dev.keyservice.v1.ListKeysRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListKeysMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * RevokeKey revokes a key. It is idempotent: revoking a revoked key
     * returns the original revoked_at.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.RevokeKeyResponse> revokeKey(
        dev.keyservice.v1.RevokeKeyRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRevokeKeyMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * UpdateKey changes the fields of a key named in update_mask (AIP-134):
     * name, scopes, metadata, expires_at, rate_limit, enabled, allowed_cidrs.
     * A field in the mask but unset in key is cleared (expires_at: never
     * expires; rate_limit: the configured default). Over REST the mask may be
     * given as ?update_mask=name,scopes; without it, the fields present in the
     * body are the mask. A revoked key cannot be updated (FAILED_PRECONDITION).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.UpdateKeyResponse> updateKey(
        dev.keyservice.v1.UpdateKeyRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getUpdateKeyMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * RotateKey issues a new key that copies the old key's name, owner,
     * scopes, metadata, limits and allowed addresses, and lets the old key
     * expire after grace_period. Both are valid during the grace period.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.RotateKeyResponse> rotateKey(
        dev.keyservice.v1.RotateKeyRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRotateKeyMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * ListAuditEvents lists admin changes to keys, newest first, optionally
     * for one key or one actor.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.ListAuditEventsResponse> listAuditEvents(
        dev.keyservice.v1.ListAuditEventsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListAuditEventsMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_VALIDATE = 0;
  private static final int METHODID_CREATE_KEY = 1;
  private static final int METHODID_GET_KEY = 2;
  private static final int METHODID_LIST_KEYS = 3;
  private static final int METHODID_REVOKE_KEY = 4;
  private static final int METHODID_UPDATE_KEY = 5;
  private static final int METHODID_ROTATE_KEY = 6;
  private static final int METHODID_LIST_AUDIT_EVENTS = 7;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final KeyServiceImplBase serviceImpl;
    private final int methodId;

    MethodHandlers(KeyServiceImplBase serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_VALIDATE:
          serviceImpl.validate((dev.keyservice.v1.ValidateRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.ValidateResponse>) responseObserver);
          break;
        case METHODID_CREATE_KEY:
          serviceImpl.createKey((dev.keyservice.v1.CreateKeyRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.CreateKeyResponse>) responseObserver);
          break;
        case METHODID_GET_KEY:
          serviceImpl.getKey((dev.keyservice.v1.GetKeyRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.GetKeyResponse>) responseObserver);
          break;
        case METHODID_LIST_KEYS:
          serviceImpl.listKeys((dev.keyservice.v1.ListKeysRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.ListKeysResponse>) responseObserver);
          break;
        case METHODID_REVOKE_KEY:
          serviceImpl.revokeKey((dev.keyservice.v1.RevokeKeyRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.RevokeKeyResponse>) responseObserver);
          break;
        case METHODID_UPDATE_KEY:
          serviceImpl.updateKey((dev.keyservice.v1.UpdateKeyRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.UpdateKeyResponse>) responseObserver);
          break;
        case METHODID_ROTATE_KEY:
          serviceImpl.rotateKey((dev.keyservice.v1.RotateKeyRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.RotateKeyResponse>) responseObserver);
          break;
        case METHODID_LIST_AUDIT_EVENTS:
          serviceImpl.listAuditEvents((dev.keyservice.v1.ListAuditEventsRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.ListAuditEventsResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        default:
          throw new AssertionError();
      }
    }
  }

  private static abstract class KeyServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    KeyServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return dev.keyservice.v1.KeyServiceProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("KeyService");
    }
  }

  private static final class KeyServiceFileDescriptorSupplier
      extends KeyServiceBaseDescriptorSupplier {
    KeyServiceFileDescriptorSupplier() {}
  }

  private static final class KeyServiceMethodDescriptorSupplier
      extends KeyServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final String methodName;

    KeyServiceMethodDescriptorSupplier(String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (KeyServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new KeyServiceFileDescriptorSupplier())
              .addMethod(getValidateMethod())
              .addMethod(getCreateKeyMethod())
              .addMethod(getGetKeyMethod())
              .addMethod(getListKeysMethod())
              .addMethod(getRevokeKeyMethod())
              .addMethod(getUpdateKeyMethod())
              .addMethod(getRotateKeyMethod())
              .addMethod(getListAuditEventsMethod())
              .build();
        }
      }
    }
    return result;
  }
}
