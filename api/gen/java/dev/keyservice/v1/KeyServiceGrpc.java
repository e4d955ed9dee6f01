package dev.keyservice.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * KeyService answers "is this API key valid, and whose is it?" and lets
 * administrators create, inspect, list, update, rotate and revoke keys, and
 * read the audit trail of those changes.
 * Every method needs a credential with its permission (`authorization:
 * Bearer &lt;credential&gt;`; see docs/tenancy.md): keys.validate for Validate
 * (which callers may also call without one unless caller credentials are
 * required), keys.read, keys.create, ... for the others. A credential bound
 * to keyspaces sees only their keys.
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

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.CreateKeyspaceRequest,
      dev.keyservice.v1.CreateKeyspaceResponse> getCreateKeyspaceMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "CreateKeyspace",
      requestType = dev.keyservice.v1.CreateKeyspaceRequest.class,
      responseType = dev.keyservice.v1.CreateKeyspaceResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.CreateKeyspaceRequest,
      dev.keyservice.v1.CreateKeyspaceResponse> getCreateKeyspaceMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.CreateKeyspaceRequest, dev.keyservice.v1.CreateKeyspaceResponse> getCreateKeyspaceMethod;
    if ((getCreateKeyspaceMethod = KeyServiceGrpc.getCreateKeyspaceMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getCreateKeyspaceMethod = KeyServiceGrpc.getCreateKeyspaceMethod) == null) {
          KeyServiceGrpc.getCreateKeyspaceMethod = getCreateKeyspaceMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.CreateKeyspaceRequest, dev.keyservice.v1.CreateKeyspaceResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "CreateKeyspace"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.CreateKeyspaceRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.CreateKeyspaceResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("CreateKeyspace"))
              .build();
        }
      }
    }
    return getCreateKeyspaceMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.GetKeyspaceRequest,
      dev.keyservice.v1.GetKeyspaceResponse> getGetKeyspaceMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetKeyspace",
      requestType = dev.keyservice.v1.GetKeyspaceRequest.class,
      responseType = dev.keyservice.v1.GetKeyspaceResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.GetKeyspaceRequest,
      dev.keyservice.v1.GetKeyspaceResponse> getGetKeyspaceMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.GetKeyspaceRequest, dev.keyservice.v1.GetKeyspaceResponse> getGetKeyspaceMethod;
    if ((getGetKeyspaceMethod = KeyServiceGrpc.getGetKeyspaceMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getGetKeyspaceMethod = KeyServiceGrpc.getGetKeyspaceMethod) == null) {
          KeyServiceGrpc.getGetKeyspaceMethod = getGetKeyspaceMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.GetKeyspaceRequest, dev.keyservice.v1.GetKeyspaceResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetKeyspace"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.GetKeyspaceRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.GetKeyspaceResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("GetKeyspace"))
              .build();
        }
      }
    }
    return getGetKeyspaceMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.ListKeyspacesRequest,
      dev.keyservice.v1.ListKeyspacesResponse> getListKeyspacesMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListKeyspaces",
      requestType = dev.keyservice.v1.ListKeyspacesRequest.class,
      responseType = dev.keyservice.v1.ListKeyspacesResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.ListKeyspacesRequest,
      dev.keyservice.v1.ListKeyspacesResponse> getListKeyspacesMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.ListKeyspacesRequest, dev.keyservice.v1.ListKeyspacesResponse> getListKeyspacesMethod;
    if ((getListKeyspacesMethod = KeyServiceGrpc.getListKeyspacesMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getListKeyspacesMethod = KeyServiceGrpc.getListKeyspacesMethod) == null) {
          KeyServiceGrpc.getListKeyspacesMethod = getListKeyspacesMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.ListKeyspacesRequest, dev.keyservice.v1.ListKeyspacesResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListKeyspaces"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.ListKeyspacesRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.ListKeyspacesResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("ListKeyspaces"))
              .build();
        }
      }
    }
    return getListKeyspacesMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.UpdateKeyspaceRequest,
      dev.keyservice.v1.UpdateKeyspaceResponse> getUpdateKeyspaceMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "UpdateKeyspace",
      requestType = dev.keyservice.v1.UpdateKeyspaceRequest.class,
      responseType = dev.keyservice.v1.UpdateKeyspaceResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.UpdateKeyspaceRequest,
      dev.keyservice.v1.UpdateKeyspaceResponse> getUpdateKeyspaceMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.UpdateKeyspaceRequest, dev.keyservice.v1.UpdateKeyspaceResponse> getUpdateKeyspaceMethod;
    if ((getUpdateKeyspaceMethod = KeyServiceGrpc.getUpdateKeyspaceMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getUpdateKeyspaceMethod = KeyServiceGrpc.getUpdateKeyspaceMethod) == null) {
          KeyServiceGrpc.getUpdateKeyspaceMethod = getUpdateKeyspaceMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.UpdateKeyspaceRequest, dev.keyservice.v1.UpdateKeyspaceResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "UpdateKeyspace"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.UpdateKeyspaceRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.UpdateKeyspaceResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("UpdateKeyspace"))
              .build();
        }
      }
    }
    return getUpdateKeyspaceMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.CreateCredentialRequest,
      dev.keyservice.v1.CreateCredentialResponse> getCreateCredentialMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "CreateCredential",
      requestType = dev.keyservice.v1.CreateCredentialRequest.class,
      responseType = dev.keyservice.v1.CreateCredentialResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.CreateCredentialRequest,
      dev.keyservice.v1.CreateCredentialResponse> getCreateCredentialMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.CreateCredentialRequest, dev.keyservice.v1.CreateCredentialResponse> getCreateCredentialMethod;
    if ((getCreateCredentialMethod = KeyServiceGrpc.getCreateCredentialMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getCreateCredentialMethod = KeyServiceGrpc.getCreateCredentialMethod) == null) {
          KeyServiceGrpc.getCreateCredentialMethod = getCreateCredentialMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.CreateCredentialRequest, dev.keyservice.v1.CreateCredentialResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "CreateCredential"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.CreateCredentialRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.CreateCredentialResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("CreateCredential"))
              .build();
        }
      }
    }
    return getCreateCredentialMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.ListCredentialsRequest,
      dev.keyservice.v1.ListCredentialsResponse> getListCredentialsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListCredentials",
      requestType = dev.keyservice.v1.ListCredentialsRequest.class,
      responseType = dev.keyservice.v1.ListCredentialsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.ListCredentialsRequest,
      dev.keyservice.v1.ListCredentialsResponse> getListCredentialsMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.ListCredentialsRequest, dev.keyservice.v1.ListCredentialsResponse> getListCredentialsMethod;
    if ((getListCredentialsMethod = KeyServiceGrpc.getListCredentialsMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getListCredentialsMethod = KeyServiceGrpc.getListCredentialsMethod) == null) {
          KeyServiceGrpc.getListCredentialsMethod = getListCredentialsMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.ListCredentialsRequest, dev.keyservice.v1.ListCredentialsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListCredentials"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.ListCredentialsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.ListCredentialsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("ListCredentials"))
              .build();
        }
      }
    }
    return getListCredentialsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.RevokeCredentialRequest,
      dev.keyservice.v1.RevokeCredentialResponse> getRevokeCredentialMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "RevokeCredential",
      requestType = dev.keyservice.v1.RevokeCredentialRequest.class,
      responseType = dev.keyservice.v1.RevokeCredentialResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.RevokeCredentialRequest,
      dev.keyservice.v1.RevokeCredentialResponse> getRevokeCredentialMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.RevokeCredentialRequest, dev.keyservice.v1.RevokeCredentialResponse> getRevokeCredentialMethod;
    if ((getRevokeCredentialMethod = KeyServiceGrpc.getRevokeCredentialMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getRevokeCredentialMethod = KeyServiceGrpc.getRevokeCredentialMethod) == null) {
          KeyServiceGrpc.getRevokeCredentialMethod = getRevokeCredentialMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.RevokeCredentialRequest, dev.keyservice.v1.RevokeCredentialResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "RevokeCredential"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.RevokeCredentialRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.RevokeCredentialResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("RevokeCredential"))
              .build();
        }
      }
    }
    return getRevokeCredentialMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.AddCreditsRequest,
      dev.keyservice.v1.AddCreditsResponse> getAddCreditsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "AddCredits",
      requestType = dev.keyservice.v1.AddCreditsRequest.class,
      responseType = dev.keyservice.v1.AddCreditsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.AddCreditsRequest,
      dev.keyservice.v1.AddCreditsResponse> getAddCreditsMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.AddCreditsRequest, dev.keyservice.v1.AddCreditsResponse> getAddCreditsMethod;
    if ((getAddCreditsMethod = KeyServiceGrpc.getAddCreditsMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getAddCreditsMethod = KeyServiceGrpc.getAddCreditsMethod) == null) {
          KeyServiceGrpc.getAddCreditsMethod = getAddCreditsMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.AddCreditsRequest, dev.keyservice.v1.AddCreditsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "AddCredits"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.AddCreditsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.AddCreditsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("AddCredits"))
              .build();
        }
      }
    }
    return getAddCreditsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.ReportUsageRequest,
      dev.keyservice.v1.ReportUsageResponse> getReportUsageMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ReportUsage",
      requestType = dev.keyservice.v1.ReportUsageRequest.class,
      responseType = dev.keyservice.v1.ReportUsageResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.ReportUsageRequest,
      dev.keyservice.v1.ReportUsageResponse> getReportUsageMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.ReportUsageRequest, dev.keyservice.v1.ReportUsageResponse> getReportUsageMethod;
    if ((getReportUsageMethod = KeyServiceGrpc.getReportUsageMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getReportUsageMethod = KeyServiceGrpc.getReportUsageMethod) == null) {
          KeyServiceGrpc.getReportUsageMethod = getReportUsageMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.ReportUsageRequest, dev.keyservice.v1.ReportUsageResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ReportUsage"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.ReportUsageRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.ReportUsageResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("ReportUsage"))
              .build();
        }
      }
    }
    return getReportUsageMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.GetUsageRequest,
      dev.keyservice.v1.GetUsageResponse> getGetUsageMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetUsage",
      requestType = dev.keyservice.v1.GetUsageRequest.class,
      responseType = dev.keyservice.v1.GetUsageResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.GetUsageRequest,
      dev.keyservice.v1.GetUsageResponse> getGetUsageMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.GetUsageRequest, dev.keyservice.v1.GetUsageResponse> getGetUsageMethod;
    if ((getGetUsageMethod = KeyServiceGrpc.getGetUsageMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getGetUsageMethod = KeyServiceGrpc.getGetUsageMethod) == null) {
          KeyServiceGrpc.getGetUsageMethod = getGetUsageMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.GetUsageRequest, dev.keyservice.v1.GetUsageResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetUsage"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.GetUsageRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.GetUsageResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("GetUsage"))
              .build();
        }
      }
    }
    return getGetUsageMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.CreateOwnerRequest,
      dev.keyservice.v1.CreateOwnerResponse> getCreateOwnerMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "CreateOwner",
      requestType = dev.keyservice.v1.CreateOwnerRequest.class,
      responseType = dev.keyservice.v1.CreateOwnerResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.CreateOwnerRequest,
      dev.keyservice.v1.CreateOwnerResponse> getCreateOwnerMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.CreateOwnerRequest, dev.keyservice.v1.CreateOwnerResponse> getCreateOwnerMethod;
    if ((getCreateOwnerMethod = KeyServiceGrpc.getCreateOwnerMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getCreateOwnerMethod = KeyServiceGrpc.getCreateOwnerMethod) == null) {
          KeyServiceGrpc.getCreateOwnerMethod = getCreateOwnerMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.CreateOwnerRequest, dev.keyservice.v1.CreateOwnerResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "CreateOwner"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.CreateOwnerRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.CreateOwnerResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("CreateOwner"))
              .build();
        }
      }
    }
    return getCreateOwnerMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.GetOwnerRequest,
      dev.keyservice.v1.GetOwnerResponse> getGetOwnerMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetOwner",
      requestType = dev.keyservice.v1.GetOwnerRequest.class,
      responseType = dev.keyservice.v1.GetOwnerResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.GetOwnerRequest,
      dev.keyservice.v1.GetOwnerResponse> getGetOwnerMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.GetOwnerRequest, dev.keyservice.v1.GetOwnerResponse> getGetOwnerMethod;
    if ((getGetOwnerMethod = KeyServiceGrpc.getGetOwnerMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getGetOwnerMethod = KeyServiceGrpc.getGetOwnerMethod) == null) {
          KeyServiceGrpc.getGetOwnerMethod = getGetOwnerMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.GetOwnerRequest, dev.keyservice.v1.GetOwnerResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetOwner"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.GetOwnerRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.GetOwnerResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("GetOwner"))
              .build();
        }
      }
    }
    return getGetOwnerMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.ListOwnersRequest,
      dev.keyservice.v1.ListOwnersResponse> getListOwnersMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListOwners",
      requestType = dev.keyservice.v1.ListOwnersRequest.class,
      responseType = dev.keyservice.v1.ListOwnersResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.ListOwnersRequest,
      dev.keyservice.v1.ListOwnersResponse> getListOwnersMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.ListOwnersRequest, dev.keyservice.v1.ListOwnersResponse> getListOwnersMethod;
    if ((getListOwnersMethod = KeyServiceGrpc.getListOwnersMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getListOwnersMethod = KeyServiceGrpc.getListOwnersMethod) == null) {
          KeyServiceGrpc.getListOwnersMethod = getListOwnersMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.ListOwnersRequest, dev.keyservice.v1.ListOwnersResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListOwners"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.ListOwnersRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.ListOwnersResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("ListOwners"))
              .build();
        }
      }
    }
    return getListOwnersMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.UpdateOwnerRequest,
      dev.keyservice.v1.UpdateOwnerResponse> getUpdateOwnerMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "UpdateOwner",
      requestType = dev.keyservice.v1.UpdateOwnerRequest.class,
      responseType = dev.keyservice.v1.UpdateOwnerResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.UpdateOwnerRequest,
      dev.keyservice.v1.UpdateOwnerResponse> getUpdateOwnerMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.UpdateOwnerRequest, dev.keyservice.v1.UpdateOwnerResponse> getUpdateOwnerMethod;
    if ((getUpdateOwnerMethod = KeyServiceGrpc.getUpdateOwnerMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getUpdateOwnerMethod = KeyServiceGrpc.getUpdateOwnerMethod) == null) {
          KeyServiceGrpc.getUpdateOwnerMethod = getUpdateOwnerMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.UpdateOwnerRequest, dev.keyservice.v1.UpdateOwnerResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "UpdateOwner"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.UpdateOwnerRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.UpdateOwnerResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("UpdateOwner"))
              .build();
        }
      }
    }
    return getUpdateOwnerMethod;
  }

  private static volatile io.grpc.MethodDescriptor<dev.keyservice.v1.WatchKeyEventsRequest,
      dev.keyservice.v1.WatchKeyEventsResponse> getWatchKeyEventsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "WatchKeyEvents",
      requestType = dev.keyservice.v1.WatchKeyEventsRequest.class,
      responseType = dev.keyservice.v1.WatchKeyEventsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
  public static io.grpc.MethodDescriptor<dev.keyservice.v1.WatchKeyEventsRequest,
      dev.keyservice.v1.WatchKeyEventsResponse> getWatchKeyEventsMethod() {
    io.grpc.MethodDescriptor<dev.keyservice.v1.WatchKeyEventsRequest, dev.keyservice.v1.WatchKeyEventsResponse> getWatchKeyEventsMethod;
    if ((getWatchKeyEventsMethod = KeyServiceGrpc.getWatchKeyEventsMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getWatchKeyEventsMethod = KeyServiceGrpc.getWatchKeyEventsMethod) == null) {
          KeyServiceGrpc.getWatchKeyEventsMethod = getWatchKeyEventsMethod =
              io.grpc.MethodDescriptor.<dev.keyservice.v1.WatchKeyEventsRequest, dev.keyservice.v1.WatchKeyEventsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "WatchKeyEvents"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.WatchKeyEventsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  dev.keyservice.v1.WatchKeyEventsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("WatchKeyEvents"))
              .build();
        }
      }
    }
    return getWatchKeyEventsMethod;
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
   * Every method needs a credential with its permission (`authorization:
   * Bearer &lt;credential&gt;`; see docs/tenancy.md): keys.validate for Validate
   * (which callers may also call without one unless caller credentials are
   * required), keys.read, keys.create, ... for the others. A credential bound
   * to keyspaces sees only their keys.
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
     * name, scopes, metadata, expires_at, rate_limit, enabled, allowed_cidrs,
     * credits. A field in the mask but unset in key is cleared (expires_at:
     * never expires; rate_limit: the configured default; credits: none). Over REST the mask may be
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

    /**
     * <pre>
     * CreateKeyspace creates a keyspace: a product whose keys have their own
     * prefix and defaults, and are never valid for another keyspace.
     * </pre>
     */
    public void createKeyspace(dev.keyservice.v1.CreateKeyspaceRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.CreateKeyspaceResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getCreateKeyspaceMethod(), responseObserver);
    }

    /**
     * <pre>
     * GetKeyspace returns a keyspace by id or name.
     * </pre>
     */
    public void getKeyspace(dev.keyservice.v1.GetKeyspaceRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.GetKeyspaceResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetKeyspaceMethod(), responseObserver);
    }

    /**
     * <pre>
     * ListKeyspaces lists the keyspaces the credential may see, oldest first.
     * </pre>
     */
    public void listKeyspaces(dev.keyservice.v1.ListKeyspacesRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.ListKeyspacesResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListKeyspacesMethod(), responseObserver);
    }

    /**
     * <pre>
     * UpdateKeyspace changes the fields of a keyspace named in update_mask:
     * name, default_format, default_rate_limit, default_expiry,
     * default_scopes. The prefix never changes (keys carry it).
     * </pre>
     */
    public void updateKeyspace(dev.keyservice.v1.UpdateKeyspaceRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.UpdateKeyspaceResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getUpdateKeyspaceMethod(), responseObserver);
    }

    /**
     * <pre>
     * CreateCredential creates a credential and returns its secret, once.
     * A credential may only create credentials with a subset of its own
     * permissions and keyspaces, expiring no later than itself.
     * </pre>
     */
    public void createCredential(dev.keyservice.v1.CreateCredentialRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.CreateCredentialResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getCreateCredentialMethod(), responseObserver);
    }

    /**
     * <pre>
     * ListCredentials lists stored credentials (never their secrets), oldest
     * first: those within the calling credential's keyspaces.
     * </pre>
     */
    public void listCredentials(dev.keyservice.v1.ListCredentialsRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.ListCredentialsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListCredentialsMethod(), responseObserver);
    }

    /**
     * <pre>
     * RevokeCredential revokes a stored credential: every replica refuses it
     * within 100 ms. It is idempotent.
     * </pre>
     */
    public void revokeCredential(dev.keyservice.v1.RevokeCredentialRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.RevokeCredentialResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRevokeCredentialMethod(), responseObserver);
    }

    /**
     * <pre>
     * AddCredits adds credits to a key (key_id) or an owner (owner_id); a
     * negative amount takes them away. With request_id it is safe to retry:
     * the same request_id and body add once.
     * </pre>
     */
    public void addCredits(dev.keyservice.v1.AddCreditsRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.AddCreditsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getAddCreditsMethod(), responseObserver);
    }

    /**
     * <pre>
     * ReportUsage charges a cost known after the fact (an LLM call's tokens)
     * to a key's credits and its owner's. A retry with the same request_id
     * charges once. A key may go below zero only this way; it is then
     * refused (CODE_USAGE_EXCEEDED) until refilled or topped up.
     * </pre>
     */
    public void reportUsage(dev.keyservice.v1.ReportUsageRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.ReportUsageResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getReportUsageMethod(), responseObserver);
    }

    /**
     * <pre>
     * GetUsage reads the usage history: Validate answers by outcome code and
     * credits spent, per minute, hour or day, for a key, an owner or a
     * keyspace, optionally grouped by key or owner.
     * </pre>
     */
    public void getUsage(dev.keyservice.v1.GetUsageRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.GetUsageResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetUsageMethod(), responseObserver);
    }

    /**
     * <pre>
     * CreateOwner gives an owner (the owner string of keys, within a
     * keyspace) its own rate limit and credits: every key of that owner
     * spends from both its own budgets and the owner's.
     * </pre>
     */
    public void createOwner(dev.keyservice.v1.CreateOwnerRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.CreateOwnerResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getCreateOwnerMethod(), responseObserver);
    }

    /**
     * <pre>
     * GetOwner returns an owner by id.
     * </pre>
     */
    public void getOwner(dev.keyservice.v1.GetOwnerRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.GetOwnerResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetOwnerMethod(), responseObserver);
    }

    /**
     * <pre>
     * ListOwners lists the owners with budgets, oldest first.
     * </pre>
     */
    public void listOwners(dev.keyservice.v1.ListOwnersRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.ListOwnersResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListOwnersMethod(), responseObserver);
    }

    /**
     * <pre>
     * UpdateOwner changes the fields of an owner named in update_mask:
     * rate_limit, credits.
     * </pre>
     */
    public void updateOwner(dev.keyservice.v1.UpdateOwnerRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.UpdateOwnerResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getUpdateOwnerMethod(), responseObserver);
    }

    /**
     * <pre>
     * WatchKeyEvents streams every change to the keys the caller may see
     * (created, updated — which covers disabled, enabled and the old key of a
     * rotation —, revoked) and to keyspaces, credentials and credits, as this
     * replica learns of them, so a caller can keep answers in its own memory
     * (ValidateResponse.cacheable) and drop them when their key changes.
     * Resumable from the cursor of the last event received, on the same
     * replica, while the event is within its window; otherwise the first
     * message is KEY_EVENT_KIND_RESYNC: drop everything held. Heartbeats
     * come when nothing else does. Needs the keys.validate permission, as
     * Validate. Over REST: newline-delimited JSON, one {"result": WatchKeyEventsResponse}
     * a line.
     * </pre>
     */
    public void watchKeyEvents(dev.keyservice.v1.WatchKeyEventsRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.WatchKeyEventsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getWatchKeyEventsMethod(), responseObserver);
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
          .addMethod(
            getCreateKeyspaceMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.CreateKeyspaceRequest,
                dev.keyservice.v1.CreateKeyspaceResponse>(
                  this, METHODID_CREATE_KEYSPACE)))
          .addMethod(
            getGetKeyspaceMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.GetKeyspaceRequest,
                dev.keyservice.v1.GetKeyspaceResponse>(
                  this, METHODID_GET_KEYSPACE)))
          .addMethod(
            getListKeyspacesMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.ListKeyspacesRequest,
                dev.keyservice.v1.ListKeyspacesResponse>(
                  this, METHODID_LIST_KEYSPACES)))
          .addMethod(
            getUpdateKeyspaceMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.UpdateKeyspaceRequest,
                dev.keyservice.v1.UpdateKeyspaceResponse>(
                  this, METHODID_UPDATE_KEYSPACE)))
          .addMethod(
            getCreateCredentialMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.CreateCredentialRequest,
                dev.keyservice.v1.CreateCredentialResponse>(
                  this, METHODID_CREATE_CREDENTIAL)))
          .addMethod(
            getListCredentialsMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.ListCredentialsRequest,
                dev.keyservice.v1.ListCredentialsResponse>(
                  this, METHODID_LIST_CREDENTIALS)))
          .addMethod(
            getRevokeCredentialMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.RevokeCredentialRequest,
                dev.keyservice.v1.RevokeCredentialResponse>(
                  this, METHODID_REVOKE_CREDENTIAL)))
          .addMethod(
            getAddCreditsMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.AddCreditsRequest,
                dev.keyservice.v1.AddCreditsResponse>(
                  this, METHODID_ADD_CREDITS)))
          .addMethod(
            getReportUsageMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.ReportUsageRequest,
                dev.keyservice.v1.ReportUsageResponse>(
                  this, METHODID_REPORT_USAGE)))
          .addMethod(
            getGetUsageMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.GetUsageRequest,
                dev.keyservice.v1.GetUsageResponse>(
                  this, METHODID_GET_USAGE)))
          .addMethod(
            getCreateOwnerMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.CreateOwnerRequest,
                dev.keyservice.v1.CreateOwnerResponse>(
                  this, METHODID_CREATE_OWNER)))
          .addMethod(
            getGetOwnerMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.GetOwnerRequest,
                dev.keyservice.v1.GetOwnerResponse>(
                  this, METHODID_GET_OWNER)))
          .addMethod(
            getListOwnersMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.ListOwnersRequest,
                dev.keyservice.v1.ListOwnersResponse>(
                  this, METHODID_LIST_OWNERS)))
          .addMethod(
            getUpdateOwnerMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                dev.keyservice.v1.UpdateOwnerRequest,
                dev.keyservice.v1.UpdateOwnerResponse>(
                  this, METHODID_UPDATE_OWNER)))
          .addMethod(
            getWatchKeyEventsMethod(),
            io.grpc.stub.ServerCalls.asyncServerStreamingCall(
              new MethodHandlers<
                dev.keyservice.v1.WatchKeyEventsRequest,
                dev.keyservice.v1.WatchKeyEventsResponse>(
                  this, METHODID_WATCH_KEY_EVENTS)))
          .build();
    }
  }

  /**
   * <pre>
   * KeyService answers "is this API key valid, and whose is it?" and lets
   * administrators create, inspect, list, update, rotate and revoke keys, and
   * read the audit trail of those changes.
   * Every method needs a credential with its permission (`authorization:
   * Bearer &lt;credential&gt;`; see docs/tenancy.md): keys.validate for Validate
   * (which callers may also call without one unless caller credentials are
   * required), keys.read, keys.create, ... for the others. A credential bound
   * to keyspaces sees only their keys.
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
     * name, scopes, metadata, expires_at, rate_limit, enabled, allowed_cidrs,
     * credits. A field in the mask but unset in key is cleared (expires_at:
     * never expires; rate_limit: the configured default; credits: none). Over REST the mask may be
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

    /**
     * <pre>
     * CreateKeyspace creates a keyspace: a product whose keys have their own
     * prefix and defaults, and are never valid for another keyspace.
     * </pre>
     */
    public void createKeyspace(dev.keyservice.v1.CreateKeyspaceRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.CreateKeyspaceResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getCreateKeyspaceMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * GetKeyspace returns a keyspace by id or name.
     * </pre>
     */
    public void getKeyspace(dev.keyservice.v1.GetKeyspaceRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.GetKeyspaceResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetKeyspaceMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * ListKeyspaces lists the keyspaces the credential may see, oldest first.
     * </pre>
     */
    public void listKeyspaces(dev.keyservice.v1.ListKeyspacesRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.ListKeyspacesResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListKeyspacesMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * UpdateKeyspace changes the fields of a keyspace named in update_mask:
     * name, default_format, default_rate_limit, default_expiry,
     * default_scopes. The prefix never changes (keys carry it).
     * </pre>
     */
    public void updateKeyspace(dev.keyservice.v1.UpdateKeyspaceRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.UpdateKeyspaceResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getUpdateKeyspaceMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * CreateCredential creates a credential and returns its secret, once.
     * A credential may only create credentials with a subset of its own
     * permissions and keyspaces, expiring no later than itself.
     * </pre>
     */
    public void createCredential(dev.keyservice.v1.CreateCredentialRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.CreateCredentialResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getCreateCredentialMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * ListCredentials lists stored credentials (never their secrets), oldest
     * first: those within the calling credential's keyspaces.
     * </pre>
     */
    public void listCredentials(dev.keyservice.v1.ListCredentialsRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.ListCredentialsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListCredentialsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * RevokeCredential revokes a stored credential: every replica refuses it
     * within 100 ms. It is idempotent.
     * </pre>
     */
    public void revokeCredential(dev.keyservice.v1.RevokeCredentialRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.RevokeCredentialResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRevokeCredentialMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * AddCredits adds credits to a key (key_id) or an owner (owner_id); a
     * negative amount takes them away. With request_id it is safe to retry:
     * the same request_id and body add once.
     * </pre>
     */
    public void addCredits(dev.keyservice.v1.AddCreditsRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.AddCreditsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getAddCreditsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * ReportUsage charges a cost known after the fact (an LLM call's tokens)
     * to a key's credits and its owner's. A retry with the same request_id
     * charges once. A key may go below zero only this way; it is then
     * refused (CODE_USAGE_EXCEEDED) until refilled or topped up.
     * </pre>
     */
    public void reportUsage(dev.keyservice.v1.ReportUsageRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.ReportUsageResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getReportUsageMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * GetUsage reads the usage history: Validate answers by outcome code and
     * credits spent, per minute, hour or day, for a key, an owner or a
     * keyspace, optionally grouped by key or owner.
     * </pre>
     */
    public void getUsage(dev.keyservice.v1.GetUsageRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.GetUsageResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetUsageMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * CreateOwner gives an owner (the owner string of keys, within a
     * keyspace) its own rate limit and credits: every key of that owner
     * spends from both its own budgets and the owner's.
     * </pre>
     */
    public void createOwner(dev.keyservice.v1.CreateOwnerRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.CreateOwnerResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getCreateOwnerMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * GetOwner returns an owner by id.
     * </pre>
     */
    public void getOwner(dev.keyservice.v1.GetOwnerRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.GetOwnerResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetOwnerMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * ListOwners lists the owners with budgets, oldest first.
     * </pre>
     */
    public void listOwners(dev.keyservice.v1.ListOwnersRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.ListOwnersResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListOwnersMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * UpdateOwner changes the fields of an owner named in update_mask:
     * rate_limit, credits.
     * </pre>
     */
    public void updateOwner(dev.keyservice.v1.UpdateOwnerRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.UpdateOwnerResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getUpdateOwnerMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * WatchKeyEvents streams every change to the keys the caller may see
     * (created, updated — which covers disabled, enabled and the old key of a
     * rotation —, revoked) and to keyspaces, credentials and credits, as this
     * replica learns of them, so a caller can keep answers in its own memory
     * (ValidateResponse.cacheable) and drop them when their key changes.
     * Resumable from the cursor of the last event received, on the same
     * replica, while the event is within its window; otherwise the first
     * message is KEY_EVENT_KIND_RESYNC: drop everything held. Heartbeats
     * come when nothing else does. Needs the keys.validate permission, as
     * Validate. Over REST: newline-delimited JSON, one {"result": WatchKeyEventsResponse}
     * a line.
     * </pre>
     */
    public void watchKeyEvents(dev.keyservice.v1.WatchKeyEventsRequest request,
        io.grpc.stub.StreamObserver<dev.keyservice.v1.WatchKeyEventsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncServerStreamingCall(
          getChannel().newCall(getWatchKeyEventsMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * <pre>
   * KeyService answers "is this API key valid, and whose is it?" and lets
   * administrators create, inspect, list, update, rotate and revoke keys, and
   * read the audit trail of those changes.
   * Every method needs a credential with its permission (`authorization:
   * Bearer &lt;credential&gt;`; see docs/tenancy.md): keys.validate for Validate
   * (which callers may also call without one unless caller credentials are
   * required), keys.read, keys.create, ... for the others. A credential bound
   * to keyspaces sees only their keys.
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
     * name, scopes, metadata, expires_at, rate_limit, enabled, allowed_cidrs,
     * credits. A field in the mask but unset in key is cleared (expires_at:
     * never expires; rate_limit: the configured default; credits: none). Over REST the mask may be
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

    /**
     * <pre>
     * CreateKeyspace creates a keyspace: a product whose keys have their own
     * prefix and defaults, and are never valid for another keyspace.
     * </pre>
     */
    public dev.keyservice.v1.CreateKeyspaceResponse createKeyspace(dev.keyservice.v1.CreateKeyspaceRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getCreateKeyspaceMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * GetKeyspace returns a keyspace by id or name.
     * </pre>
     */
    public dev.keyservice.v1.GetKeyspaceResponse getKeyspace(dev.keyservice.v1.GetKeyspaceRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetKeyspaceMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ListKeyspaces lists the keyspaces the credential may see, oldest first.
     * </pre>
     */
    public dev.keyservice.v1.ListKeyspacesResponse listKeyspaces(dev.keyservice.v1.ListKeyspacesRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListKeyspacesMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * UpdateKeyspace changes the fields of a keyspace named in update_mask:
     * name, default_format, default_rate_limit, default_expiry,
     * default_scopes. The prefix never changes (keys carry it).
     * </pre>
     */
    public dev.keyservice.v1.UpdateKeyspaceResponse updateKeyspace(dev.keyservice.v1.UpdateKeyspaceRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getUpdateKeyspaceMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * CreateCredential creates a credential and returns its secret, once.
     * A credential may only create credentials with a subset of its own
     * permissions and keyspaces, expiring no later than itself.
     * </pre>
     */
    public dev.keyservice.v1.CreateCredentialResponse createCredential(dev.keyservice.v1.CreateCredentialRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getCreateCredentialMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ListCredentials lists stored credentials (never their secrets), oldest
     * first: those within the calling credential's keyspaces.
     * </pre>
     */
    public dev.keyservice.v1.ListCredentialsResponse listCredentials(dev.keyservice.v1.ListCredentialsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListCredentialsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * RevokeCredential revokes a stored credential: every replica refuses it
     * within 100 ms. It is idempotent.
     * </pre>
     */
    public dev.keyservice.v1.RevokeCredentialResponse revokeCredential(dev.keyservice.v1.RevokeCredentialRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRevokeCredentialMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * AddCredits adds credits to a key (key_id) or an owner (owner_id); a
     * negative amount takes them away. With request_id it is safe to retry:
     * the same request_id and body add once.
     * </pre>
     */
    public dev.keyservice.v1.AddCreditsResponse addCredits(dev.keyservice.v1.AddCreditsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getAddCreditsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ReportUsage charges a cost known after the fact (an LLM call's tokens)
     * to a key's credits and its owner's. A retry with the same request_id
     * charges once. A key may go below zero only this way; it is then
     * refused (CODE_USAGE_EXCEEDED) until refilled or topped up.
     * </pre>
     */
    public dev.keyservice.v1.ReportUsageResponse reportUsage(dev.keyservice.v1.ReportUsageRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getReportUsageMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * GetUsage reads the usage history: Validate answers by outcome code and
     * credits spent, per minute, hour or day, for a key, an owner or a
     * keyspace, optionally grouped by key or owner.
     * </pre>
     */
    public dev.keyservice.v1.GetUsageResponse getUsage(dev.keyservice.v1.GetUsageRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetUsageMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * CreateOwner gives an owner (the owner string of keys, within a
     * keyspace) its own rate limit and credits: every key of that owner
     * spends from both its own budgets and the owner's.
     * </pre>
     */
    public dev.keyservice.v1.CreateOwnerResponse createOwner(dev.keyservice.v1.CreateOwnerRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getCreateOwnerMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * GetOwner returns an owner by id.
     * </pre>
     */
    public dev.keyservice.v1.GetOwnerResponse getOwner(dev.keyservice.v1.GetOwnerRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetOwnerMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ListOwners lists the owners with budgets, oldest first.
     * </pre>
     */
    public dev.keyservice.v1.ListOwnersResponse listOwners(dev.keyservice.v1.ListOwnersRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListOwnersMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * UpdateOwner changes the fields of an owner named in update_mask:
     * rate_limit, credits.
     * </pre>
     */
    public dev.keyservice.v1.UpdateOwnerResponse updateOwner(dev.keyservice.v1.UpdateOwnerRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getUpdateOwnerMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * WatchKeyEvents streams every change to the keys the caller may see
     * (created, updated — which covers disabled, enabled and the old key of a
     * rotation —, revoked) and to keyspaces, credentials and credits, as this
     * replica learns of them, so a caller can keep answers in its own memory
     * (ValidateResponse.cacheable) and drop them when their key changes.
     * Resumable from the cursor of the last event received, on the same
     * replica, while the event is within its window; otherwise the first
     * message is KEY_EVENT_KIND_RESYNC: drop everything held. Heartbeats
     * come when nothing else does. Needs the keys.validate permission, as
     * Validate. Over REST: newline-delimited JSON, one {"result": WatchKeyEventsResponse}
     * a line.
     * </pre>
     */
    public java.util.Iterator<dev.keyservice.v1.WatchKeyEventsResponse> watchKeyEvents(
        dev.keyservice.v1.WatchKeyEventsRequest request) {
      return io.grpc.stub.ClientCalls.blockingServerStreamingCall(
          getChannel(), getWatchKeyEventsMethod(), getCallOptions(), request);
    }
  }

  /**
   * <pre>
   * KeyService answers "is this API key valid, and whose is it?" and lets
   * administrators create, inspect, list, update, rotate and revoke keys, and
   * read the audit trail of those changes.
   * Every method needs a credential with its permission (`authorization:
   * Bearer &lt;credential&gt;`; see docs/tenancy.md): keys.validate for Validate
   * (which callers may also call without one unless caller credentials are
   * required), keys.read, keys.create, ... for the others. A credential bound
   * to keyspaces sees only their keys.
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
     * name, scopes, metadata, expires_at, rate_limit, enabled, allowed_cidrs,
     * credits. A field in the mask but unset in key is cleared (expires_at:
     * never expires; rate_limit: the configured default; credits: none). Over REST the mask may be
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

    /**
     * <pre>
     * CreateKeyspace creates a keyspace: a product whose keys have their own
     * prefix and defaults, and are never valid for another keyspace.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.CreateKeyspaceResponse> createKeyspace(
        dev.keyservice.v1.CreateKeyspaceRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getCreateKeyspaceMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * GetKeyspace returns a keyspace by id or name.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.GetKeyspaceResponse> getKeyspace(
        dev.keyservice.v1.GetKeyspaceRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetKeyspaceMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * ListKeyspaces lists the keyspaces the credential may see, oldest first.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.ListKeyspacesResponse> listKeyspaces(
        dev.keyservice.v1.ListKeyspacesRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListKeyspacesMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * UpdateKeyspace changes the fields of a keyspace named in update_mask:
     * name, default_format, default_rate_limit, default_expiry,
     * default_scopes. The prefix never changes (keys carry it).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.UpdateKeyspaceResponse> updateKeyspace(
        dev.keyservice.v1.UpdateKeyspaceRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getUpdateKeyspaceMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * CreateCredential creates a credential and returns its secret, once.
     * A credential may only create credentials with a subset of its own
     * permissions and keyspaces, expiring no later than itself.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.CreateCredentialResponse> createCredential(
        dev.keyservice.v1.CreateCredentialRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getCreateCredentialMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * ListCredentials lists stored credentials (never their secrets), oldest
     * first: those within the calling credential's keyspaces.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.ListCredentialsResponse> listCredentials(
        dev.keyservice.v1.ListCredentialsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListCredentialsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * RevokeCredential revokes a stored credential: every replica refuses it
     * within 100 ms. It is idempotent.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.RevokeCredentialResponse> revokeCredential(
        dev.keyservice.v1.RevokeCredentialRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRevokeCredentialMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * AddCredits adds credits to a key (key_id) or an owner (owner_id); a
     * negative amount takes them away. With request_id it is safe to retry:
     * the same request_id and body add once.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.AddCreditsResponse> addCredits(
        dev.keyservice.v1.AddCreditsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getAddCreditsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * ReportUsage charges a cost known after the fact (an LLM call's tokens)
     * to a key's credits and its owner's. A retry with the same request_id
     * charges once. A key may go below zero only this way; it is then
     * refused (CODE_USAGE_EXCEEDED) until refilled or topped up.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.ReportUsageResponse> reportUsage(
        dev.keyservice.v1.ReportUsageRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getReportUsageMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * GetUsage reads the usage history: Validate answers by outcome code and
     * credits spent, per minute, hour or day, for a key, an owner or a
     * keyspace, optionally grouped by key or owner.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.GetUsageResponse> getUsage(
        dev.keyservice.v1.GetUsageRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetUsageMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * CreateOwner gives an owner (the owner string of keys, within a
     * keyspace) its own rate limit and credits: every key of that owner
     * spends from both its own budgets and the owner's.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.CreateOwnerResponse> createOwner(
        dev.keyservice.v1.CreateOwnerRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getCreateOwnerMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * GetOwner returns an owner by id.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.GetOwnerResponse> getOwner(
        dev.keyservice.v1.GetOwnerRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetOwnerMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * ListOwners lists the owners with budgets, oldest first.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.ListOwnersResponse> listOwners(
        dev.keyservice.v1.ListOwnersRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListOwnersMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * UpdateOwner changes the fields of an owner named in update_mask:
     * rate_limit, credits.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<dev.keyservice.v1.UpdateOwnerResponse> updateOwner(
        dev.keyservice.v1.UpdateOwnerRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getUpdateOwnerMethod(), getCallOptions()), request);
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
  private static final int METHODID_CREATE_KEYSPACE = 8;
  private static final int METHODID_GET_KEYSPACE = 9;
  private static final int METHODID_LIST_KEYSPACES = 10;
  private static final int METHODID_UPDATE_KEYSPACE = 11;
  private static final int METHODID_CREATE_CREDENTIAL = 12;
  private static final int METHODID_LIST_CREDENTIALS = 13;
  private static final int METHODID_REVOKE_CREDENTIAL = 14;
  private static final int METHODID_ADD_CREDITS = 15;
  private static final int METHODID_REPORT_USAGE = 16;
  private static final int METHODID_GET_USAGE = 17;
  private static final int METHODID_CREATE_OWNER = 18;
  private static final int METHODID_GET_OWNER = 19;
  private static final int METHODID_LIST_OWNERS = 20;
  private static final int METHODID_UPDATE_OWNER = 21;
  private static final int METHODID_WATCH_KEY_EVENTS = 22;

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
        case METHODID_CREATE_KEYSPACE:
          serviceImpl.createKeyspace((dev.keyservice.v1.CreateKeyspaceRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.CreateKeyspaceResponse>) responseObserver);
          break;
        case METHODID_GET_KEYSPACE:
          serviceImpl.getKeyspace((dev.keyservice.v1.GetKeyspaceRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.GetKeyspaceResponse>) responseObserver);
          break;
        case METHODID_LIST_KEYSPACES:
          serviceImpl.listKeyspaces((dev.keyservice.v1.ListKeyspacesRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.ListKeyspacesResponse>) responseObserver);
          break;
        case METHODID_UPDATE_KEYSPACE:
          serviceImpl.updateKeyspace((dev.keyservice.v1.UpdateKeyspaceRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.UpdateKeyspaceResponse>) responseObserver);
          break;
        case METHODID_CREATE_CREDENTIAL:
          serviceImpl.createCredential((dev.keyservice.v1.CreateCredentialRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.CreateCredentialResponse>) responseObserver);
          break;
        case METHODID_LIST_CREDENTIALS:
          serviceImpl.listCredentials((dev.keyservice.v1.ListCredentialsRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.ListCredentialsResponse>) responseObserver);
          break;
        case METHODID_REVOKE_CREDENTIAL:
          serviceImpl.revokeCredential((dev.keyservice.v1.RevokeCredentialRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.RevokeCredentialResponse>) responseObserver);
          break;
        case METHODID_ADD_CREDITS:
          serviceImpl.addCredits((dev.keyservice.v1.AddCreditsRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.AddCreditsResponse>) responseObserver);
          break;
        case METHODID_REPORT_USAGE:
          serviceImpl.reportUsage((dev.keyservice.v1.ReportUsageRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.ReportUsageResponse>) responseObserver);
          break;
        case METHODID_GET_USAGE:
          serviceImpl.getUsage((dev.keyservice.v1.GetUsageRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.GetUsageResponse>) responseObserver);
          break;
        case METHODID_CREATE_OWNER:
          serviceImpl.createOwner((dev.keyservice.v1.CreateOwnerRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.CreateOwnerResponse>) responseObserver);
          break;
        case METHODID_GET_OWNER:
          serviceImpl.getOwner((dev.keyservice.v1.GetOwnerRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.GetOwnerResponse>) responseObserver);
          break;
        case METHODID_LIST_OWNERS:
          serviceImpl.listOwners((dev.keyservice.v1.ListOwnersRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.ListOwnersResponse>) responseObserver);
          break;
        case METHODID_UPDATE_OWNER:
          serviceImpl.updateOwner((dev.keyservice.v1.UpdateOwnerRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.UpdateOwnerResponse>) responseObserver);
          break;
        case METHODID_WATCH_KEY_EVENTS:
          serviceImpl.watchKeyEvents((dev.keyservice.v1.WatchKeyEventsRequest) request,
              (io.grpc.stub.StreamObserver<dev.keyservice.v1.WatchKeyEventsResponse>) responseObserver);
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
              .addMethod(getCreateKeyspaceMethod())
              .addMethod(getGetKeyspaceMethod())
              .addMethod(getListKeyspacesMethod())
              .addMethod(getUpdateKeyspaceMethod())
              .addMethod(getCreateCredentialMethod())
              .addMethod(getListCredentialsMethod())
              .addMethod(getRevokeCredentialMethod())
              .addMethod(getAddCreditsMethod())
              .addMethod(getReportUsageMethod())
              .addMethod(getGetUsageMethod())
              .addMethod(getCreateOwnerMethod())
              .addMethod(getGetOwnerMethod())
              .addMethod(getListOwnersMethod())
              .addMethod(getUpdateOwnerMethod())
              .addMethod(getWatchKeyEventsMethod())
              .build();
        }
      }
    }
    return result;
  }
}
